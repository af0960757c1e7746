import { Logger } from '@nestjs/common';
import type { DistributedCache } from '../cache/distributed-cache.interface.js';
import { DEFAULT_MEMORY_CACHE_SIZE_LIMIT, MemoryDistributedCache } from '../cache/memory/memory.cache.js';
import { resolveBound } from '../cache/memory/memory-entry.table.js';
import { resolveRedisCacheOptions } from '../cache/redis/redis-options.validator.js';
import { KeyRing } from '../protection/key-ring.js';
import { CacheSessionStore } from '../session/stores/cache-session.store.js';
import { largestSessionSize, MemorySessionStore } from '../session/stores/memory-session.store.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';
import type { SessionModuleOptions } from './session-module.options.js';
import { isMissingPackage } from './missing-package.js';
import { durationUnitWarnings } from './duration-units.check.js';
import {
  resolveSessionOptions,
  SessionConfigurationError,
  type ResolvedSessionOptions,
} from './session-options.resolver.js';
import type { ResolvedRedisCacheOptions } from '../cache/redis/redis-cache.options.js';
import { resolvePostgresOptions } from '../cache/postgres/postgres-options.validator.js';
import { loadPostgresInfrastructure } from './postgres-infrastructure.loader.js';
import { logEvent, SessionLogEvents } from '../logging/session-log-events.js';
import { describeOptionValue } from '../options/option-names.check.js';
import { resolveMaxSessionsPerUser } from '../users/user-sessions.options.js';

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
    private readonly closeStore?: () => Promise<void>,
    private readonly userIndexCheck?: () => Promise<void>,
  ) {}

  static async create(options: SessionModuleOptions): Promise<SessionInfrastructure> {
    const infrastructure = await SessionInfrastructure.build(options);
    try {
      checkMemoryStoreHoldsASession(
        infrastructure.store,
        infrastructure.options,
        options.store === undefined,
      );
    } catch (error) {
      await infrastructure.close();
      throw error;
    }
    return infrastructure;
  }

  private static async build(options: SessionModuleOptions): Promise<SessionInfrastructure> {
    const logger = new Logger('SessionModule');
    // Validate everything before connecting anywhere, so a typo fails fast.
    const resolved = resolveSessionOptions(options);
    resolveMaxSessionsPerUser(options.users); // UserSessions reads it later; a mistake fails before connecting
    const lockless = resolved.lock ? locklessStore(options) : undefined;
    if (lockless) {
      // Every request that loads the session would answer 503 otherwise.
      throw new SessionConfigurationError(
        `SessionModule option session.lock needs a session store that takes locks, and ${lockless}. Keep sessions ` +
          'in the memory store (the default), redis or postgres, give a store that implements tryLock (and ' +
          'renewLock and unlock: SessionStore in docs/API.md), or remove session.lock.',
      );
    }
    const keyRing =
      options.secrets === undefined ? KeyRing.ephemeral() : KeyRing.fromSecrets(options.secrets, 'secrets');
    if (keyRing.isEphemeral) {
      logEvent(
        logger,
        SessionLogEvents.EphemeralKeyRing,
        'No secrets configured: session and TempData cookies are protected by a key generated at startup. ' +
          'They will not survive a restart or work across instances; set SessionModule.forRoot({ secrets: [...] }).',
      );
    }
    for (const warning of durationUnitWarnings(resolved))
      logEvent(logger, SessionLogEvents.DurationInMilliseconds, warning);
    if (options.postgres) {
      const postgres = resolvePostgresOptions(options.postgres);
      const { createPostgresInfrastructure } = await loadPostgresInfrastructure();
      const parts = await createPostgresInfrastructure(postgres, options.cache);
      return new SessionInfrastructure(resolved, keyRing, parts.cache, parts.store, () => parts.close());
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
      const { createRedisInfrastructure } = await loadRedisInfrastructure();
      const parts = await createRedisInfrastructure(
        redis,
        resolved,
        options.store,
        options.users !== undefined,
      );
      return new SessionInfrastructure(
        resolved,
        keyRing,
        parts.cache,
        parts.store,
        () => parts.close(),
        parts.checkUserIndexAccess,
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
    const cache = memoryCacheOf(options.memory);
    return new SessionInfrastructure(
      resolved,
      keyRing,
      cache,
      options.store ?? memoryStoreOf(options.memory),
    );
  }

  /**
   * Once the app is known to use `UserSessions` (after startup: middleware is registered last), checks that a Redis
   * ACL user reaches a user index's keys, unless `users` had it checked at connect. Every sign-in answered 503
   * otherwise, logged as a permission error.
   */
  async checkUserIndexAccess(): Promise<void> {
    await this.userIndexCheck?.();
  }

  async close(): Promise<void> {
    await this.closeStore?.();
  }
}

/** Why the store that will hold the sessions cannot take locks, or undefined. */
function locklessStore(options: SessionModuleOptions): string | undefined {
  if (options.postgres) return undefined;
  if (options.store !== undefined)
    return typeof options.store.tryLock === 'function'
      ? undefined
      : 'the store given as store has no tryLock';
  if (options.cache !== undefined && !options.redis)
    return 'sessions kept in the DistributedCache given as cache cannot be locked (a cache has no atomic step)';
  return undefined;
}

/**
 * Loads the Redis parts, which import ioredis: an optional peer, installed only by apps that use Redis.
 * Its absence becomes a startup error that says what to install, not ERR_MODULE_NOT_FOUND. Only a
 * dynamic import keeps ioredis out of the main entry's module graph (test/api/public-api.spec.ts).
 */
async function loadRedisInfrastructure(): Promise<{
  createRedisInfrastructure(
    redis: ResolvedRedisCacheOptions,
    options: ResolvedSessionOptions,
    store: SessionStore | undefined,
    users: boolean,
  ): Promise<{
    cache: DistributedCache;
    store: SessionStore;
    checkUserIndexAccess?: () => Promise<void>;
    close(): Promise<void>;
  }>;
}> {
  try {
    return await import('./redis-infrastructure.js');
  } catch (error) {
    if (isMissingPackage(error, 'ioredis')) {
      throw new SessionConfigurationError(
        'SessionModule option redis needs the ioredis package, which is not installed. ' +
          'Run npm install ioredis (an optional peer dependency: apps on the memory store do without it).',
      );
    }
    throw error;
  }
}

/**
 * A memory store whose `sizeLimit` is below what one session may grow to under the session limits: that session
 * would evict every other, and then itself (its requests answered 413). A configuration mistake: startup fails.
 */
function checkMemoryStoreHoldsASession(
  store: SessionStore,
  limits: ResolvedSessionOptions,
  fromModuleOption: boolean,
): void {
  if (!(store instanceof MemorySessionStore) || store.sizeLimit === undefined) return;
  const largest = largestSessionSize(limits);
  if (store.sizeLimit >= largest) return;
  const [option, raise] = fromModuleOption
    ? ['SessionModule option memory.sizeLimit', 'memory.sizeLimit']
    : ['The sizeLimit of the MemorySessionStore given as store', 'its sizeLimit'];
  throw new SessionConfigurationError(
    `${option} (${store.sizeLimit} bytes for all sessions together) is below what one session may grow to: ` +
      `${largest} bytes as the store counts them (session.maxSessionBytes ${limits.maxSessionBytes}, ` +
      `session.maxKeys ${limits.maxKeys}), so one large session would evict every other. Raise ${raise} to ` +
      `at least ${largest}, or lower session.maxSessionBytes (and session.maxKeys).`,
  );
}

/**
 * The built-in memory store from the module's `memory` option. A bound the store refuses is a
 * configuration mistake like any other option's: SessionConfigurationError, with the store's message
 * (it names `memory.<option>` and what to use instead).
 */
function memoryStoreOf(memory: SessionModuleOptions['memory']): MemorySessionStore {
  return asConfigurationError(
    () =>
      new MemorySessionStore({
        maxSessions: memory?.maxSessions,
        sizeLimit: memory?.sizeLimit,
        clock: memory?.clock,
      }),
  );
}

/** The injectable cache beside the memory store, bounded by `memory.cacheSizeLimit` (200 MiB by default). */
function memoryCacheOf(memory: SessionModuleOptions['memory']): MemoryDistributedCache {
  const given = memory?.cacheSizeLimit;
  // Checked here for the module option's name in the message; the cache gets the resolved bound.
  const sizeLimit = asConfigurationError(() =>
    resolveBound(
      given,
      DEFAULT_MEMORY_CACHE_SIZE_LIMIT,
      () =>
        'SessionModule option memory.cacheSizeLimit must be a positive integer number of bytes, or Infinity ' +
        `for no limit (got ${describeOptionValue(given)}).`,
    ),
  );
  return asConfigurationError(
    () => new MemoryDistributedCache({ sizeLimit: sizeLimit ?? Infinity, clock: memory?.clock }),
  );
}

function asConfigurationError<T>(create: () => T): T {
  try {
    return create();
  } catch (error) {
    if (error instanceof RangeError) throw new SessionConfigurationError(error.message, { cause: error });
    throw error;
  }
}
