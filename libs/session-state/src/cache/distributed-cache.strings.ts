import type { DistributedCacheEntryOptions } from './distributed-cache-entry.options.js';
import type { DistributedCache } from './distributed-cache.interface.js';

const decoder = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

/**
 * Reads a UTF-8 string from a {@link DistributedCache} (ASP.NET's `GetStringAsync`).
 * @example const name = await getCacheString(cache, 'user:42:name');
 */
export async function getCacheString(cache: DistributedCache, key: string): Promise<string | undefined> {
  const bytes = await cache.get(key);
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/**
 * Writes a UTF-8 string to a {@link DistributedCache} (ASP.NET's `SetStringAsync`).
 * @example await setCacheString(cache, 'user:42:name', 'Ada', { slidingExpiration: 60_000 });
 */
export function setCacheString(
  cache: DistributedCache,
  key: string,
  value: string,
  options?: DistributedCacheEntryOptions,
): Promise<void> {
  return cache.set(key, encoder.encode(value), options);
}
