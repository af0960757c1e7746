import { Logger } from '@nestjs/common';
import {
  resolveExpiration,
  timeToLive,
  type DistributedCacheEntryOptions,
} from '../distributed-cache-entry.options.js';
import type { DistributedCache } from '../distributed-cache.interface.js';
import { assertCacheKey, assertCacheValue } from '../distributed-cache.key.js';
import { redisKeys } from './redis-keys.js';
import type { RedisConnection } from './redis.connection.js';
import { commandBytes } from './redis-bytes.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/**
 * A {@link DistributedCache} on Redis or Redis Cluster (ioredis). `get` reads and slides the
 * expiration in one round trip (a Lua script), where ASP.NET's RedisCache needs two.
 *
 * With `throwOnError: false` failures are swallowed (get returns undefined), logged, and kept as
 * {@link lastError}.
 *
 * @example
 * const connection = new RedisConnection(resolveRedisCacheOptions({ url: 'redis://localhost:6379' }));
 * await connection.connect();
 * const cache = new RedisDistributedCache(connection);
 * await setCacheString(cache, 'greeting', 'hello', { slidingExpiration: 60_000 });
 */
@HiddenFromLogs()
export class RedisDistributedCache implements DistributedCache {
  private readonly logger = new Logger('RedisDistributedCache');
  private readonly prefix: string;
  /** The last swallowed failure (only with `throwOnError: false`), like the seed's `LastException`. */
  lastError: Error | undefined;

  constructor(private readonly connection: RedisConnection) {
    this.prefix = connection.options.applicationName;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertCacheKey(key);
    const value = await this.run('GET', () =>
      this.connection.script('cacheGet', redisKeys.cacheEntry(this.prefix, key), Date.now()),
    );
    return value === null || value === undefined ? undefined : new Uint8Array(value as Buffer);
  }

  async set(key: string, value: Uint8Array, options?: DistributedCacheEntryOptions): Promise<void> {
    assertCacheKey(key);
    assertCacheValue(value);
    const now = Date.now();
    const expiration = resolveExpiration(options, now);
    const ttl = timeToLive(expiration, now);
    await this.run('SET', () =>
      this.connection.script(
        'cacheSet',
        redisKeys.cacheEntry(this.prefix, key),
        commandBytes(value),
        Number.isFinite(ttl) ? Math.ceil(ttl) : 0,
        expiration.slidingMs === undefined ? '' : Math.ceil(expiration.slidingMs),
        expiration.absoluteAt === undefined ? '' : Math.ceil(expiration.absoluteAt),
      ),
    );
  }

  async refresh(key: string): Promise<void> {
    assertCacheKey(key);
    await this.run('REFRESH', () =>
      this.connection.script('cacheRefresh', redisKeys.cacheEntry(this.prefix, key), Date.now()),
    );
  }

  async remove(key: string): Promise<void> {
    assertCacheKey(key);
    await this.run('REMOVE', () => this.connection.client.del(redisKeys.cacheEntry(this.prefix, key)));
  }

  private async run<T>(name: string, operation: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.connection.execute(name, operation);
    } catch (error) {
      if (this.connection.options.throwOnError) throw error;
      this.lastError = error as Error;
      logEvent(
        this.logger,
        SessionLogEvents.RedisFailureSwallowed,
        `Swallowed Redis failure (throwOnError: false): ${(error as Error).message}`,
      );
      return undefined;
    }
  }
}
