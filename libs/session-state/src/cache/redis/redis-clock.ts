import { performance } from 'node:perf_hooks';

/** How long a sample counts toward the estimate (it follows drift and steps of either clock). */
const WINDOW_MS = 60_000;

/**
 * This process's estimate of Redis's clock (`TIME`, epoch ms), for deadlines that Redis itself
 * checks. Every sample is `redisTime - localNow` taken when a reply carrying Redis's TIME arrives:
 * the reply left Redis before it arrived, so each sample is at most the true offset. The estimate is
 * the largest sample of the last one to two minutes, so it never runs ahead of Redis's clock (short of
 * a step back of that clock), whatever the skew between the app's and Redis's wall clocks; a slow
 * reply only yields a lower sample, which the larger ones outweigh. Local time is monotonic
 * (`performance.now()`), so steps of the app's own wall clock do not matter. Before any sample it
 * falls back to the app's wall clock.
 */
export class RedisClock {
  private current = Number.NEGATIVE_INFINITY;
  private previous = Number.NEGATIVE_INFINITY;
  private windowStart = performance.now();

  /** A reply carried Redis's time `redisMs` (epoch ms). */
  observe(redisMs: number): void {
    const local = performance.now();
    if (local - this.windowStart >= WINDOW_MS) {
      this.previous = this.current;
      this.current = Number.NEGATIVE_INFINITY;
      this.windowStart = local;
    }
    const sample = redisMs - local;
    if (sample > this.current) this.current = sample;
  }

  /** Redis's time now, as estimated here (epoch ms): at most Redis's own clock. */
  now(): number {
    const offset = Math.max(this.current, this.previous);
    // Before the first sample: the wall clock itself (timeOrigin + now drifts from it when the system
    // clock is stepped while the process runs).
    if (offset === Number.NEGATIVE_INFINITY) return Date.now();
    return Math.floor(offset + performance.now());
  }
}

/** `TIME`'s reply (seconds, microseconds) in epoch ms. */
export function redisTimeMs(reply: readonly (string | number)[]): number {
  return Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
}
