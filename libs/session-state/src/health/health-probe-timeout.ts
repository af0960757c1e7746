/** The longest delay Node's timers run (about 24.8 days): a longer one, Infinity included, fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The `timeout` given to `isHealthy()` as a timer's delay, or `undefined` for `Infinity` (no bound but the store's
 * own). Throws a TypeError naming the option for any other value a timer would not wait for: Node fires those after
 * 1 ms, which reported every store that answers as down.
 */
export function healthProbeTimeout(timeout: number): number | undefined {
  if (timeout === Infinity) return undefined;
  if (typeof timeout !== 'number' || !(timeout > 0 && timeout <= MAX_TIMER_MS)) {
    throw new TypeError(
      'SessionStoreHealthIndicator.isHealthy() option timeout must be a positive number of milliseconds, at most ' +
        `${MAX_TIMER_MS} (about 24.8 days, the longest delay a Node timer runs), or Infinity for no bound but the ` +
        `store's own operation timeout (got ${String(timeout)}).`,
    );
  }
  return timeout;
}
