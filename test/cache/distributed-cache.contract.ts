import type { DistributedCache } from 'nest-session-state';

/** A cache under test and a way to let time pass for it (a manual clock, or real sleeping). */
export interface CacheUnderTest {
  cache: DistributedCache;
  /** Lets `ms` milliseconds pass for the cache. */
  advance(ms: number): Promise<void>;
  /** Time unit of the expiry tests: 1 ms of fake time, or enough real time to be reliable. */
  unit: number;
}

const bytes = (text: string) => new TextEncoder().encode(text);

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

  it('absolute expiration relative to now', async () => {
    const name = k();
    await t.cache.set(name, bytes('x'), { absoluteExpirationRelativeToNow: 4 * t.unit });
    await t.advance(2 * t.unit);
    expect(await t.cache.get(name)).toBeDefined();
    await t.advance(3 * t.unit);
    expect(await t.cache.get(name)).toBeUndefined();
  });

  it('absolute expiration at a date', async () => {
    const name = k();
    await t.cache.set(name, bytes('x'), {
      absoluteExpiration: new Date(Date.now() + 4 * t.unit + nowOffset(t)),
    });
    await t.advance(2 * t.unit);
    expect(await t.cache.get(name)).toBeDefined();
    await t.advance(3 * t.unit);
    expect(await t.cache.get(name)).toBeUndefined();
  });

  it('sliding expiration: each get extends it, idleness ends it', async () => {
    const name = k();
    await t.cache.set(name, bytes('x'), { slidingExpiration: 4 * t.unit });
    for (let i = 0; i < 3; i++) {
      await t.advance(2 * t.unit);
      expect(await t.cache.get(name)).toBeDefined();
    }
    await t.advance(5 * t.unit);
    expect(await t.cache.get(name)).toBeUndefined();
  });

  it('refresh slides without reading', async () => {
    const name = k();
    await t.cache.set(name, bytes('x'), { slidingExpiration: 4 * t.unit });
    await t.advance(3 * t.unit);
    await t.cache.refresh(name);
    await t.advance(3 * t.unit);
    expect(await t.cache.get(name)).toBeDefined();
    await t.cache.refresh(k()); // a missing key is fine
  });

  it('sliding never extends past the absolute expiration', async () => {
    const name = k();
    await t.cache.set(name, bytes('x'), {
      slidingExpiration: 4 * t.unit,
      absoluteExpirationRelativeToNow: 6 * t.unit,
    });
    await t.advance(3 * t.unit);
    expect(await t.cache.get(name)).toBeDefined();
    await t.advance(2 * t.unit);
    expect(await t.cache.get(name)).toBeDefined(); // slid to 9 but capped at 6
    await t.advance(2 * t.unit);
    expect(await t.cache.get(name)).toBeUndefined();
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

/** With a manual clock "now" is the clock's; with real time it is Date.now(). */
let offsets = new WeakMap<CacheUnderTest, number>();
export function setNowOffset(t: CacheUnderTest, offset: number): void {
  offsets.set(t, offset);
}
function nowOffset(t: CacheUnderTest): number {
  return offsets.get(t) ?? 0;
}
export function resetNowOffsets(): void {
  offsets = new WeakMap();
}
