import { Logger } from '@nestjs/common';
import type { DistributedCache } from '../cache/distributed-cache.interface.js';
import { MemoryDistributedCache } from '../cache/memory/memory.cache.js';
import { resolveRedisCacheOptions } from '../cache/redis/redis-options.validator.js';
import { RedisDistributedCache } from '../cache/redis/redis.cache.js';
import { RedisConnection } from '../cache/redis/redis.connection.js';
import { RedisInvalidations } from '../cache/redis/redis-invalidations.js';
import { KeyRing } from '../protection/key-ring.js';
import { SessionNearCache } from '../session/stores/session-near-cache.js';
import type { Redis } from 'ioredis';
import { CacheSessionStore } from '../session/stores/cache-session.store.js';
import { MemorySessionStore } from '../session/stores/memory-session.store.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';
import type { SessionModuleOptions } from './session-module.options.js';
import { tempDataCookieBudgetWarning } from '../temp-data/temp-data-cookie.budget.js';
import {
  resolveSessionOptions,
  SessionConfigurationError,
  type ResolvedSessionOptions,
} from './session-options.resolver.js';

/**
 * The long-lived parts built from the options at startup: key ring, cache, session store and,
 * with Redis, the connection (connected before the app serves, so bad settings fail startup).
 */
export class SessionInfrastructure {
  private constructor(
    /** The module options, validated and with defaults. */
    readonly options: ResolvedSessionOptions,
    readonly keyRing: KeyRing,
    readonly cache: DistributedCache,
    readonly store: SessionStore,
    private readonly connection?: RedisConnection,
    private readonly invalidations?: RedisInvalidations,
  ) {}

  static async create(options: SessionModuleOptions): Promise<SessionInfrastructure> {
    const logger = new Logger('SessionModule');
    // Validate everything before connecting anywhere, so a typo fails fast.
    const resolved = resolveSessionOptions(options);
    const keyRing =
      options.secrets === undefined ? KeyRing.ephemeral() : KeyRing.fromSecrets(options.secrets, 'secrets');
    if (keyRing.isEphemeral) {
      logger.warn(
        'No secrets configured: session and TempData cookies are protected by a key generated at startup. ' +
          'They will not survive a restart or work across instances; set SessionModule.forRoot({ secrets: [...] }).',
      );
    }
    const budget =
      resolved.tempData.provider === 'cookie' &&
      tempDataCookieBudgetWarning(resolved.tempData.maxCookieBytes);
    if (budget) logger.warn(budget);
    const sources = (['redis', 'cache', 'store'] as const).filter((k) => options[k] !== undefined);
    if (sources.includes('redis') && sources.includes('cache')) {
      throw new SessionConfigurationError(
        'SessionModule options redis and cache exclude each other: give one store.',
      );
    }
    if (options.redis) {
      const redis = resolveRedisCacheOptions(options.redis);
      if (redis.nearCache && options.store !== undefined) {
        throw new SessionConfigurationError(
          'SessionModule options redis.nearCache and store exclude each other: the near cache belongs to ' +
            "the module's Redis session store. Remove one of them.",
        );
      }
      if (redis.nearCache && resolved.lock) {
        throw new SessionConfigurationError(
          'SessionModule options redis.nearCache and session.lock exclude each other: under the lock a ' +
            'read-modify-write must read what the previous lock holder wrote, and a near-cache copy may lag ' +
            'it by the invalidation delay. Remove one of them.',
        );
      }
      const connection = new RedisConnection(redis);
      await connection.connect();
      const { RedisSessionStore } = await import('../session/stores/redis-session.store.js');
      const { near, invalidations } = await SessionInfrastructure.nearCache(connection, resolved);
      return new SessionInfrastructure(
        resolved,
        keyRing,
        new RedisDistributedCache(connection),
        options.store ?? new RedisSessionStore(connection, near),
        connection,
        invalidations,
      );
    }
    if (options.cache) {
      return new SessionInfrastructure(
        resolved,
        keyRing,
        options.cache,
        options.store ?? new CacheSessionStore(options.cache),
      );
    }
    const cache = new MemoryDistributedCache({ clock: options.memory?.clock });
    return new SessionInfrastructure(
      resolved,
      keyRing,
      cache,
      options.store ??
        new MemorySessionStore({ sizeLimit: options.memory?.sizeLimit, clock: options.memory?.clock }),
    );
  }

  /** The near cache and its invalidation channel, when `redis.nearCache` asks for them. */
  private static async nearCache(
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
    );
    try {
      await invalidations.start();
    } catch (error) {
      await connection.close();
      throw error;
    }
    return { near, invalidations };
  }

  async close(): Promise<void> {
    await this.invalidations?.close();
    await this.connection?.close();
  }
}
