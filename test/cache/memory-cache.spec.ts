import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CacheEntryTooLargeError, ManualClock, MemoryDistributedCache } from 'nest-session-state';
import { distributedCacheContract } from './distributed-cache.contract.js';

describe('MemoryDistributedCache (manual clock)', () => {
  distributedCacheContract(() => {
    const clock = new ManualClock(Date.now());
    return {
      cache: new MemoryDistributedCache({ clock }),
      advance: (ms) => {
        clock.advance(ms);
        return Promise.resolve();
      },
      unit: 1000,
      now: () => clock.now(),
    };
  });

  it('expires exactly to the millisecond', async () => {
    const clock = new ManualClock(Date.now());
    const cache = new MemoryDistributedCache({ clock });
    await cache.set('k', Uint8Array.of(1), { absoluteExpirationRelativeToNow: 1000 });
    clock.advance(999);
    expect(await cache.get('k')).toBeDefined();
    clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('evicts least recently used entries beyond the size limit', async () => {
    const cache = new MemoryDistributedCache({ sizeLimit: 300 });
    await cache.set('a', new Uint8Array(100));
    await cache.set('b', new Uint8Array(100));
    await cache.set('c', new Uint8Array(100));
    await cache.get('a'); // a is now the most recently used
    await cache.set('d', new Uint8Array(100));
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toBeDefined();
    expect(await cache.get('d')).toBeDefined();
  });

  it('refuses a value larger than the whole sizeLimit: CacheEntryTooLargeError, nothing stored, nothing evicted', async () => {
    const cache = new MemoryDistributedCache({ sizeLimit: 300 });
    await cache.set('a', new Uint8Array(100));
    await cache.set('b', new Uint8Array([1, 2, 3]));
    await expect(cache.set('b', new Uint8Array(301))).rejects.toThrow(CacheEntryTooLargeError);
    await expect(cache.set('c', new Uint8Array(301))).rejects.toThrow(
      /a value of 301 bytes is larger than the whole cache \(sizeLimit 300 bytes: .*memory\.cacheSizeLimit for the module's own cache\): nothing was stored, nothing evicted/,
    );
    expect((await cache.get('a'))?.byteLength).toBe(100);
    expect(await cache.get('b')).toEqual(new Uint8Array([1, 2, 3])); // the value before the refused write
    expect(await cache.get('c')).toBeUndefined();
    await cache.set('c', new Uint8Array(300)); // exactly the limit fits, evicting the others
    expect((await cache.get('c'))?.byteLength).toBe(300);
  });

  it('sweeps expired entries a few per write, without a full scan per call', async () => {
    const clock = new ManualClock(Date.now());
    const cache = new MemoryDistributedCache({ clock });
    for (let i = 0; i < 1000; i++) await cache.set(`old-${i}`, Uint8Array.of(1), { slidingExpiration: 10 });
    clock.advance(11);
    expect(cache.count).toBe(1000);
    await cache.set('new', Uint8Array.of(1));
    expect(cache.count).toBeGreaterThan(980); // one write examined only a handful of entries
    for (let i = 0; i < 200; i++) await cache.set(`fresh-${i}`, Uint8Array.of(1));
    expect(cache.count).toBe(201); // 200 writes x 8 entries each covered the 1000 dead ones
  });

  it('sweeps expired entries on reads too: traffic that only reads known keys still frees the dead ones', async () => {
    const clock = new ManualClock(Date.now());
    const cache = new MemoryDistributedCache({ clock });
    for (let i = 0; i < 1000; i++) await cache.set(`old-${i}`, Uint8Array.of(1), { slidingExpiration: 10 });
    await cache.set('kept', Uint8Array.of(1));
    clock.advance(11);
    for (let i = 0; i < 1100; i++) await cache.get('kept');
    expect(cache.count).toBe(1);
  });

  // A probe: known keys read in a fixed cycle moved ahead of the cursor in step with it, which then never met the
  // entry just moved nor the end of the table: 40% of the expired entries stayed until a new key came.
  it('sweeps expired entries on reads of known keys in a fixed cycle too', async () => {
    const clock = new ManualClock(Date.now());
    const cache = new MemoryDistributedCache({ clock });
    for (let i = 0; i < 9000; i++)
      await cache.set(`dead-${i}`, Uint8Array.of(1), { slidingExpiration: 1000 });
    for (let i = 0; i < 100; i++)
      await cache.set(`live-${i}`, Uint8Array.of(1), { slidingExpiration: 3_600_000 });
    clock.advance(2000);
    for (let i = 1; i <= 30_000; i++) await cache.get(`live-${i % 100}`);
    expect(cache.count).toBe(100);
  });

  // A probe: a read-mostly cache (or app whose clients all keep their sessions) grew ~120 B per read until the next
  // new key: the sweep's idle Map iterator kept every backing table the LRU reordering replaced.
  it('reads of known keys alone do not grow the heap (the LRU reordering with the sweep cursor)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const cache = new MemoryDistributedCache(); // bounded by default: reads reorder
    for (let i = 0; i < 5000; i++)
      await cache.set(`key${i}`, Uint8Array.of(1), { slidingExpiration: 600_000 });
    const heap = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    for (let j = 0; j < 50_000; j++) await cache.get(`key${j % 100}`); // settle
    const before = heap();
    for (let j = 0; j < 300_000; j++) await cache.get(`key${j % 100}`);
    const grown = heap() - before;
    // Measured while the cache is in use (unreachable, it would be collected whole and the check would be empty).
    expect(await cache.get('key1')).toEqual(Uint8Array.of(1));
    // Before: ~12 MB more (a table of ~460 KB per few thousand reads); now the same tables are reused.
    expect(grown).toBeLessThan(2_000_000);
  });

  it('returns copies: mutating a result or the stored input does not change the cache', async () => {
    const cache = new MemoryDistributedCache();
    const input = Uint8Array.of(1, 2, 3);
    await cache.set('k', input);
    input[0] = 9;
    const out = (await cache.get('k'))!;
    out[1] = 9;
    expect([...(await cache.get('k'))!]).toEqual([1, 2, 3]);
  });

  it('rejects an invalid size limit with the option name', () => {
    expect(() => new MemoryDistributedCache({ sizeLimit: 0 })).toThrow(
      /sizeLimit must be a positive integer number of bytes, or Infinity for no limit \(got 0\)/,
    );
    expect(() => new MemoryDistributedCache({ sizeLimit: Number.NaN })).toThrow(/got NaN/);
  });

  describe('bounded by default, as ASP.NET Core (200 MiB of values)', () => {
    const MIB = 1024 * 1024;
    /**
     * Writes 4 values of 50 MiB (exactly 200 MiB: they fit), then one of 1 byte (past it), oldest first. (Few
     * large values: 201 of 1 MiB took seconds of garbage collection for the same bytes.)
     */
    async function fill(cache: MemoryDistributedCache): Promise<number> {
      const value = new Uint8Array(50 * MIB);
      for (let i = 0; i < 4; i++) await cache.set(`v${i}`, value);
      const fitting = cache.count;
      await cache.set('v4', Uint8Array.of(1));
      return fitting;
    }

    it('without options: the least recently used values go past 200 MiB', async () => {
      const cache = new MemoryDistributedCache();
      expect(await fill(cache)).toBe(4);
      expect(cache.count).toBe(4);
      expect(await cache.get('v0')).toBeUndefined();
      expect((await cache.get('v1'))?.byteLength).toBe(50 * MIB);
      expect((await cache.get('v4'))?.byteLength).toBe(1);
    });

    it('sizeLimit: Infinity keeps every value', async () => {
      const cache = new MemoryDistributedCache({ sizeLimit: Infinity });
      expect(await fill(cache)).toBe(4);
      expect(cache.count).toBe(5);
      expect((await cache.get('v0'))?.byteLength).toBe(50 * MIB);
    });
  });
});
