import type { DistributedCache } from 'nest-session-state';

/** A cache under test and a way to let time pass for it (a manual clock, or real sleeping). */
export interface CacheUnderTest {
  cache: DistributedCache;
  /** Lets `ms` milliseconds pass for the cache. */
  advance(ms: number): Promise<void>;
  /** Time unit of the expiry tests: 1 ms of fake time, or enough real time to be reliable. */
  unit: number;
  /** The cache's "now" in ms since the epoch: the manual clock's, or `Date.now()` (the default). */
  now?: () => number;
}

/** A "still there" check whose window the clock shows was overrun: the scenario tested a stall. */
class Stalled extends Error {}

/** What an expiry scenario uses to state the windows its "still there" checks rely on. */
interface Timer {
  /** The cache's time now. */
  now(): number;
  /** Fails the attempt as stalled (it is then run again) unless less than `ms` has passed since `since`. */
  within(since: number, ms: number, what: string): void;
  /**
   * Expects `name` to be there, given that each `[since, ms]` window (the value lives `ms` from a write or
   * touch that started at `since`) was still open when the read came back. Returns when the read started
   * (a sliding read touches the value no earlier than that).
   */
  stillThere(name: string, ...windows: [since: number, ms: number][]): Promise<number>;
}

const ATTEMPTS = 5;

/**
 * Runs an expiry scenario on time. Real time only moves forward, and a stalled process (a busy 2-core CI
 * machine, a long GC pause) lets more of it pass than a sleep asked for: a check that a value has expired
 * still holds then, but a check that it is still there tests the stall, not the cache. Those checks state
 * their windows; when the clock shows a window was overrun the attempt is void and the scenario runs
 * again with a new key, up to ATTEMPTS times. With a manual clock no window is ever overrun.
 */
async function onTime(t: CacheUnderTest, scenario: (timer: Timer) => Promise<void>): Promise<void> {
  const now = t.now ?? Date.now;
  const timer: Timer = {
    now,
    within(since, ms, what) {
      const elapsed = now() - since;
      if (elapsed >= ms) throw new Stalled(`${what}: ${elapsed} ms passed of a ${ms} ms window`);
    },
    async stillThere(name, ...windows) {
      const started = now();
      const value = await t.cache.get(name);
      for (const [since, ms] of windows) timer.within(since, ms, `reading ${name}`);
      expect(value).toBeDefined();
      return started;
    },
  };
  const stalls: string[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      await scenario(timer);
      return;
    } catch (error) {
      if (!(error instanceof Stalled)) throw error;
      stalls.push(error.message);
    }
  }
  throw new Error(`the process stalled past a window in all ${ATTEMPTS} attempts: ${stalls.join('; ')}`);
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) =>
  value === undefined ? undefined : Buffer.from(value).toString();

/** The behaviour every DistributedCache must have; run against memory, Redis and Redis Cluster. */
export function distributedCacheContract(setup: () => CacheUnderTest): void {
  let t: CacheUnderTest;
  let key = 0;
  const k = () => `contract-${Date.now()}-${key++}`;
  beforeEach(() => {
    t = setup();
  });

  it('stores and returns a value; a missing key is undefined', async () => {
    const name = k();
    await t.cache.set(name, bytes('value'));
    expect(Buffer.from((await t.cache.get(name))!).toString()).toBe('value');
    expect(await t.cache.get(k())).toBeUndefined();
  });

  it('keeps an empty value distinct from a missing key', async () => {
    const name = k();
    await t.cache.set(name, new Uint8Array(0));
    const value = await t.cache.get(name);
    expect(value).toBeInstanceOf(Uint8Array);
    expect(value!.byteLength).toBe(0);
  });

  it('is binary-safe', async () => {
    const name = k();
    const all = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
    await t.cache.set(name, all);
    expect(Buffer.from((await t.cache.get(name))!).equals(Buffer.from(all))).toBe(true);
  });

  it('stores a 1 MB value', async () => {
    const name = k();
    const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31) % 251);
    await t.cache.set(name, big);
    expect(Buffer.from((await t.cache.get(name))!).equals(Buffer.from(big))).toBe(true);
  });

  it('removes a value (and removing a missing key is fine)', async () => {
    const name = k();
    await t.cache.set(name, bytes('x'));
    await t.cache.remove(name);
    expect(await t.cache.get(name)).toBeUndefined();
    await t.cache.remove(name);
  });

  it('overwrites a value and its expiration', async () => {
    const name = k();
    await t.cache.set(name, bytes('a'), { absoluteExpirationRelativeToNow: 2 * t.unit });
    await t.cache.set(name, bytes('b'));
    await t.advance(3 * t.unit);
    expect(Buffer.from((await t.cache.get(name))!).toString()).toBe('b');
  });

  // The "still there" checks below run on time (onTime): a process stall voids the attempt, not the test.
  it('absolute expiration relative to now', async () => {
    await onTime(t, async (timer) => {
      const name = k();
      const written = timer.now();
      await t.cache.set(name, bytes('x'), { absoluteExpirationRelativeToNow: 4 * t.unit });
      await t.advance(2 * t.unit);
      await timer.stillThere(name, [written, 4 * t.unit]);
      await t.advance(3 * t.unit);
      expect(await t.cache.get(name)).toBeUndefined();
    });
  });

  it('absolute expiration at a date', async () => {
    await onTime(t, async (timer) => {
      const name = k();
      const written = timer.now();
      await t.cache.set(name, bytes('x'), { absoluteExpiration: new Date(written + 4 * t.unit) });
      await t.advance(2 * t.unit);
      await timer.stillThere(name, [written, 4 * t.unit]);
      await t.advance(3 * t.unit);
      expect(await t.cache.get(name)).toBeUndefined();
    });
  });

  it('sliding expiration: each get extends it, idleness ends it', async () => {
    await onTime(t, async (timer) => {
      const name = k();
      let touched = timer.now();
      await t.cache.set(name, bytes('x'), { slidingExpiration: 4 * t.unit });
      for (let i = 0; i < 3; i++) {
        await t.advance(2 * t.unit);
        touched = await timer.stillThere(name, [touched, 4 * t.unit]);
      }
      await t.advance(5 * t.unit);
      expect(await t.cache.get(name)).toBeUndefined();
    });
  });

  it('refresh slides without reading', async () => {
    await onTime(t, async (timer) => {
      const name = k();
      const written = timer.now();
      await t.cache.set(name, bytes('x'), { slidingExpiration: 4 * t.unit });
      await t.advance(3 * t.unit);
      const refreshed = timer.now();
      await t.cache.refresh(name);
      timer.within(written, 4 * t.unit, `refreshing ${name}`);
      await t.advance(3 * t.unit);
      await timer.stillThere(name, [refreshed, 4 * t.unit]);
      await t.cache.refresh(k()); // a missing key is fine
    });
  });

  it('sliding never extends past the absolute expiration', async () => {
    await onTime(t, async (timer) => {
      const name = k();
      const written = timer.now();
      await t.cache.set(name, bytes('x'), {
        slidingExpiration: 4 * t.unit,
        absoluteExpirationRelativeToNow: 6 * t.unit,
      });
      await t.advance(3 * t.unit);
      const touched = await timer.stillThere(name, [written, 4 * t.unit]);
      await t.advance(2 * t.unit);
      await timer.stillThere(name, [touched, 4 * t.unit], [written, 6 * t.unit]); // slid to 9 but capped at 6
      await t.advance(2 * t.unit);
      expect(await t.cache.get(name)).toBeUndefined();
    });
  });

  it('rejects zero or negative durations and past dates with clear errors', async () => {
    const name = k();
    await expect(t.cache.set(name, bytes('x'), { slidingExpiration: 0 })).rejects.toThrow(
      /slidingExpiration must be a positive/,
    );
    await expect(t.cache.set(name, bytes('x'), { slidingExpiration: -5 })).rejects.toThrow(RangeError);
    await expect(t.cache.set(name, bytes('x'), { absoluteExpirationRelativeToNow: 0 })).rejects.toThrow(
      /absoluteExpirationRelativeToNow must be a positive/,
    );
    await expect(t.cache.set(name, bytes('x'), { absoluteExpiration: new Date(0) })).rejects.toThrow(
      /in the future/,
    );
    expect(await t.cache.get(name)).toBeUndefined();
  });

  it('refuses a value that is not a Uint8Array with a TypeError, storing nothing (untyped callers: a JSON string)', async () => {
    const name = k();
    await t.cache.set(name, bytes('before'));
    for (const value of ['{"cart":[1,2]}', [1, 2, 3], { length: 2 }, null, undefined, 42]) {
      await expect(t.cache.set(name, value as unknown as Uint8Array)).rejects.toThrow(
        /DistributedCache value must be a Uint8Array/,
      );
    }
    expect(text(await t.cache.get(name))).toBe('before');
    const fresh = k();
    await expect(t.cache.set(fresh, 'text' as unknown as Uint8Array)).rejects.toThrow(TypeError);
    expect(await t.cache.get(fresh)).toBeUndefined();
  });

  it('refuses a key with a lone UTF-16 surrogate on every operation (Redis would store it as U+FFFD: keys would meet)', async () => {
    const name = k();
    const lone = `${name}\ud800`;
    const replaced = `${name}\ufffd`;
    await t.cache.set(replaced, bytes('other'));
    for (const call of [
      () => t.cache.set(lone, bytes('x')),
      () => t.cache.get(lone),
      () => t.cache.refresh(lone),
      () => t.cache.remove(lone),
    ]) {
      await expect(call()).rejects.toThrow(/DistributedCache key has a lone UTF-16 surrogate/);
    }
    expect(text(await t.cache.get(replaced))).toBe('other');
    // a well-formed pair is ordinary text
    await t.cache.set(`${name}\ud83d\ude00`, bytes('pair'));
    expect(text(await t.cache.get(`${name}\ud83d\ude00`))).toBe('pair');
  });

  it('handles concurrent sets: different keys all land, one key ends with one of the values', async () => {
    const base = k();
    await Promise.all(Array.from({ length: 100 }, (_, i) => t.cache.set(`${base}-${i}`, bytes(String(i)))));
    const values = await Promise.all(Array.from({ length: 100 }, (_, i) => t.cache.get(`${base}-${i}`)));
    expect(values.map((v) => Buffer.from(v!).toString())).toEqual(
      Array.from({ length: 100 }, (_, i) => String(i)),
    );
    const same = k();
    await Promise.all(Array.from({ length: 50 }, (_, i) => t.cache.set(same, bytes(`v${i}`))));
    expect(Buffer.from((await t.cache.get(same))!).toString()).toMatch(/^v\d+$/);
  });
}
