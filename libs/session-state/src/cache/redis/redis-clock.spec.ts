import { performance } from 'node:perf_hooks';
import { RedisClock, redisTimeMs } from './redis-clock.js';

describe('RedisClock (the estimate of Redis time that commit deadlines use)', () => {
  it("follows Redis's clock, not the app's: a Redis clock 1 hour ahead or behind moves the estimate with it", () => {
    for (const skew of [3_600_000, -3_600_000]) {
      const clock = new RedisClock();
      const redisAtReply = performance.timeOrigin + performance.now() + skew;
      clock.observe(redisAtReply);
      const estimate = clock.now();
      // Between Redis's time when the reply left and Redis's time now: never ahead of it.
      expect(estimate).toBeGreaterThanOrEqual(Math.floor(redisAtReply));
      expect(estimate).toBeLessThanOrEqual(performance.timeOrigin + performance.now() + skew);
    }
  });

  it('never runs ahead of Redis: a late (low) sample does not lower the estimate, an early one is the bound', () => {
    const clock = new RedisClock();
    const base = performance.timeOrigin + performance.now() + 10_000;
    clock.observe(base); // a prompt reply: the tightest lower bound
    clock.observe(base - 2_500); // a reply that sat 2.5 s in a stalled socket
    expect(clock.now()).toBeGreaterThanOrEqual(Math.floor(base));
    expect(clock.now()).toBeLessThanOrEqual(performance.timeOrigin + performance.now() + 10_000);
  });

  it("falls back to the app's wall clock before the first sample", () => {
    const now = Date.now();
    expect(Math.abs(new RedisClock().now() - now)).toBeLessThan(1000);
  });

  it('converts TIME (seconds, microseconds) to epoch ms', () => {
    expect(redisTimeMs(['1700000000', '123999'])).toBe(1_700_000_000_123);
  });
});
