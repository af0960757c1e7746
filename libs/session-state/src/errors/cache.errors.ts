import { SessionStateError } from './session-state.error.js';

/**
 * {@link MemoryDistributedCache.set} of a value larger than the cache's whole `sizeLimit`: nothing was stored and
 * nothing evicted (before, every other entry was evicted and then the value itself). A session store on the cache
 * answers it as a 413 (`SessionLimitExceededError`, limit `sizeLimit`).
 *
 * @example
 * try {
 *   await cache.set('report', bytes);
 * } catch (error) {
 *   if (error instanceof CacheEntryTooLargeError) return this.store.saveElsewhere(bytes); // never fits this cache
 *   throw error;
 * }
 */
export class CacheEntryTooLargeError extends SessionStateError {
  readonly code = 'CACHE_ENTRY_TOO_LARGE';

  constructor(
    /** The value's bytes. */
    readonly size: number,
    readonly sizeLimit: number,
  ) {
    // Not the key: a session store on this cache names entries by session key.
    super(
      `MemoryDistributedCache: a value of ${size} bytes is larger than the whole cache (sizeLimit ${sizeLimit} bytes: ` +
        "MemoryDistributedCacheOptions.sizeLimit, or SessionModule option memory.cacheSizeLimit for the module's own " +
        'cache): nothing was stored, nothing evicted. Raise the limit, or keep such values elsewhere.',
    );
  }
}
