import { clockOption, type Clock } from '../clock.js';
import { resolveExpiration, type DistributedCacheEntryOptions } from '../distributed-cache-entry.options.js';
import type { DistributedCache } from '../distributed-cache.interface.js';
import { assertCacheKey, assertCacheValue } from '../distributed-cache.key.js';
import { MemoryEntryTable, resolveBound } from './memory-entry.table.js';
import { CacheEntryTooLargeError } from '../../errors/cache.errors.js';
import { describeOptionValue } from '../../options/option-names.check.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/** Default of {@link MemoryDistributedCacheOptions.sizeLimit}: 200 MiB, ASP.NET Core's default. */
export const DEFAULT_MEMORY_CACHE_SIZE_LIMIT = 200 * 1024 * 1024;

/**
 * Options of {@link MemoryDistributedCache}.
 *
 * @example
 * new MemoryDistributedCache({ sizeLimit: 64 * 1024 * 1024, clock: new ManualClock() });
 */
export interface MemoryDistributedCacheOptions {
  /**
   * Maximum total bytes of values; least recently used entries are evicted beyond it. Default:
   * {@link DEFAULT_MEMORY_CACHE_SIZE_LIMIT} (200 MiB, as ASP.NET Core's MemoryDistributedCache); `Infinity`
   * for none.
   */
  sizeLimit?: number | undefined;
  /** Time source; a {@link ManualClock} in tests. */
  clock?: Clock | undefined;
}

/**
 * A {@link DistributedCache} in this process's memory: the zero-configuration default. Entries are
 * not shared between instances, so use Redis when the app runs on more than one. Bounded by default
 * (200 MiB of values), so a cache filled from requests cannot take the process's memory.
 *
 * @example const cache = new MemoryDistributedCache({ sizeLimit: 64 * 1024 * 1024 });
 */
@HiddenFromLogs()
export class MemoryDistributedCache implements DistributedCache {
  private readonly table: MemoryEntryTable<Uint8Array>;
  private readonly clock: Clock;

  constructor(options: MemoryDistributedCacheOptions = {}) {
    const sizeLimit = resolveBound(
      options.sizeLimit,
      DEFAULT_MEMORY_CACHE_SIZE_LIMIT,
      () =>
        `MemoryDistributedCacheOptions.sizeLimit must be a positive integer number of bytes, or Infinity for ` +
        `no limit (got ${describeOptionValue(options.sizeLimit)}).`,
    );
    this.clock = clockOption(
      options.clock,
      'MemoryDistributedCacheOptions.clock (SessionModule option memory.clock)',
    );
    this.table = new MemoryEntryTable<Uint8Array>({
      clock: this.clock,
      sizeLimit,
      sizeOf: (value) => value.byteLength,
    });
  }

  /** Number of stored entries (expired ones may still count until swept). */
  get count(): number {
    return this.table.count;
  }

  // async: an invalid key or invalid options are a rejected promise, as with the Redis cache
  // eslint-disable-next-line @typescript-eslint/require-await
  async get(key: string): Promise<Uint8Array | undefined> {
    assertCacheKey(key);
    const value = this.table.get(key);
    // A copy, so a caller mutating the result cannot change what is cached.
    return value === undefined ? undefined : Uint8Array.from(value);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async set(key: string, value: Uint8Array, options?: DistributedCacheEntryOptions): Promise<void> {
    assertCacheKey(key);
    assertCacheValue(value);
    const expiration = resolveExpiration(options, this.clock.now());
    if (!this.table.set(key, Uint8Array.from(value), expiration))
      throw new CacheEntryTooLargeError(value.byteLength, this.table.sizeLimit!);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async refresh(key: string): Promise<void> {
    assertCacheKey(key);
    this.table.refresh(key);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async remove(key: string): Promise<void> {
    assertCacheKey(key);
    this.table.delete(key);
  }

  /** Drops all expired entries now. */
  sweepExpired(): number {
    return this.table.sweepAll();
  }
}
