/** First wait before a failed lock release is tried again, in ms; each later wait doubles, up to the cap. */
const FIRST_RETRY_DELAY = 250;
const MAX_RETRY_DELAY = 2_000;
/**
 * Retries waiting at most: an outage under load fails a release per request, and each would otherwise keep its own
 * loop for up to a TTL. Past it a failed release is left to expire, as before retries existed.
 */
const MAX_PENDING = 10_000;

/**
 * Releases of `session.lock` locks that failed (the store unreachable, a failover under way), tried again in the
 * background until one reaches the store or the lock would have expired by itself. A release is fenced by its token,
 * so a late one never frees a lock another request took since. Before, a lock whose release fell in an outage held
 * its session until its TTL ran out (30 s by default) after the store came back: a black-box probe saw most
 * sessions of a killed Cluster master, or of a 1 s database blip, answer 503 for 30 s.
 */
export class LockReleases {
  private readonly pending = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly release: (key: string, token: string) => Promise<unknown>) {}

  /** Tries to release `token`'s lock on `key` again, until it succeeds or `ttlMs` from now (its latest expiry). */
  retry(key: string, token: string, ttlMs: number): void {
    const until = Date.now() + ttlMs;
    const attempt = (delay: number): void => {
      if (this.closed || this.pending.size >= MAX_PENDING || Date.now() + delay >= until) return;
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        if (this.closed) return;
        // A store's unlock that throws instead of rejecting must not escape the timer (an uncaught exception).
        Promise.resolve()
          .then(() => this.release(key, token))
          .catch(() => attempt(Math.min(2 * delay, MAX_RETRY_DELAY)));
      }, delay);
      timer.unref();
      this.pending.add(timer);
    };
    attempt(FIRST_RETRY_DELAY);
  }

  /** Stops every retry (the application shuts down). */
  close(): void {
    this.closed = true;
    for (const timer of this.pending) clearTimeout(timer);
    this.pending.clear();
  }
}
