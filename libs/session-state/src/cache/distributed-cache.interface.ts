import { Inject } from '@nestjs/common';
import type { DistributedCacheEntryOptions } from './distributed-cache-entry.options.js';

/**
 * A cache shared by every instance of the app: ASP.NET Core's `IDistributedCache`.
 * Values are bytes; {@link getCacheString} and {@link setCacheString} handle UTF-8 text.
 *
 * The session module registers one (memory by default, Redis when configured) under the
 * {@link DistributedCache} token; apps may inject it for their own data.
 *
 * @example
 * constructor(@InjectDistributedCache() private readonly cache: DistributedCache) {}
 * await this.cache.set('report', bytes, { slidingExpiration: 60_000 });
 */
export interface DistributedCache {
  /** The value, sliding its expiration if it has one; `undefined` when missing or expired. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores `value` (an empty array is a value, distinct from a missing key). */
  set(key: string, value: Uint8Array, options?: DistributedCacheEntryOptions): Promise<void>;
  /** Slides the expiration of an entry without reading it. */
  refresh(key: string): Promise<void>;
  /** Deletes the entry (no error when missing). */
  remove(key: string): Promise<void>;
}

/** Injection token for the {@link DistributedCache} registered by `SessionModule`. */
export const DistributedCache = Symbol('DistributedCache');

/**
 * Parameter decorator injecting the module's {@link DistributedCache}.
 *
 * @example
 * \@Injectable()
 * export class ReportCache {
 *   constructor(\@InjectDistributedCache() private readonly cache: DistributedCache) {}
 * }
 */
export const InjectDistributedCache = (): ParameterDecorator & PropertyDecorator => Inject(DistributedCache);
