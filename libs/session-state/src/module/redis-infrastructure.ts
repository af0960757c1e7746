import type { Redis } from 'ioredis';
import type { ResolvedRedisCacheOptions } from '../cache/redis/redis-cache.options.js';
import { RedisDistributedCache } from '../cache/redis/redis.cache.js';
import { RedisConnection } from '../cache/redis/redis.connection.js';
import { RedisInvalidations } from '../cache/redis/redis-invalidations.js';
import { SessionNearCache } from '../session/stores/session-near-cache.js';
import { RedisSessionStore } from '../session/stores/redis-session.store.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';
import type { ResolvedSessionOptions } from './session-options.resolver.js';
import { userIndexKeys } from '../users/redis/redis-user-session.keys.js';

/** What the Redis option builds: the connection (connected), the cache, the store, and how to close them. */
export interface RedisInfrastructure {
  readonly cache: RedisDistributedCache;
  readonly store: SessionStore;
  /** Checks the ACL user reaches a user index's keys, when sessions live here and startup did not check them. */
  readonly checkUserIndexAccess?: () => Promise<void>;
  close(): Promise<void>;
}

/**
 * The Redis half of the module's composition root. It is the only module file that reaches ioredis,
 * and SessionInfrastructure imports it on demand, so an app on the memory store never loads ioredis.
 */
export async function createRedisInfrastructure(
  redis: ResolvedRedisCacheOptions,
  options: ResolvedSessionOptions,
  store: SessionStore | undefined,
  users = false,
): Promise<RedisInfrastructure> {
  const connection = new RedisConnection(redis);
  // Without a store of the app's, sessions live in this Redis: its ACL must give their keys.
  await connection.connect({
    sessionKeys: store === undefined && {
      lock: options.lock !== undefined,
      userIndex: users ? userIndexKeys(redis.applicationName, 'startup-check') : undefined,
    },
  });
  const { near, invalidations } = await startNearCache(connection, options);
  return {
    cache: new RedisDistributedCache(connection),
    store: store ?? new RedisSessionStore(connection, near),
    checkUserIndexAccess:
      store === undefined && !users
        ? () =>
            connection.checkKeyAccess({ userIndex: userIndexKeys(redis.applicationName, 'startup-check') })
        : undefined,
    async close() {
      await invalidations?.close();
      await connection.close();
    },
  };
}

/** The near cache and its invalidation channel, when `redis.nearCache` asks for them. */
async function startNearCache(
  connection: RedisConnection,
  options: ResolvedSessionOptions,
): Promise<{ near?: SessionNearCache; invalidations?: RedisInvalidations }> {
  const bounds = connection.options.nearCache;
  if (!bounds) return {};
  const near = new SessionNearCache(bounds.maxEntries, bounds.maxAge, options.slideSkipWindow);
  const invalidations = new RedisInvalidations(
    connection.client as Redis, // the options validator refuses nearCache with a cluster
    near,
    connection.options.connectionTimeout,
    connection.options.mode === 'client',
    connection.options.operationTimeout,
  );
  try {
    await invalidations.start();
  } catch (error) {
    await connection.close();
    throw error;
  }
  return { near, invalidations };
}
