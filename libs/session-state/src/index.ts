// The public API of nest-session-state, exported by name. Nothing reachable from here imports ioredis
// (an optional peer): the Redis classes are in ./redis.ts, the `nest-session-state/redis` entry. Nor pg:
// the PostgreSQL classes are in ./postgres.ts, the `nest-session-state/postgres` entry.

// Module
export { SessionModule } from './module/session.module.js';
export type {
  CookieSecurePolicy,
  PlatformRequestCallback,
  SessionLockOptions,
  SessionModuleOptions,
  SessionOptions,
  StateCookieOptions,
  TempDataOptions,
} from './module/session-module.options.js';
export type { PlatformRequest } from './http/platform-request.js';
export { SessionConfigurationError } from './errors/configuration.errors.js';
export { SessionStateInterceptor } from './request/session-state.interceptor.js';
export type {
  SessionModuleAsyncOptions,
  SessionModuleOptionsFactory,
} from './module/session-module.definition.js';

// Distributed cache
export { DistributedCache, InjectDistributedCache } from './cache/distributed-cache.interface.js';
export type { DistributedCacheEntryOptions } from './cache/distributed-cache-entry.options.js';
export { getCacheString, setCacheString } from './cache/distributed-cache.strings.js';
export { ManualClock, systemClock, type Clock } from './cache/clock.js';
export { MemoryDistributedCache, type MemoryDistributedCacheOptions } from './cache/memory/memory.cache.js';
export { CacheEntryTooLargeError } from './errors/cache.errors.js';
export type {
  RedisCacheOptions,
  RedisClientLike,
  RedisNearCacheOptions,
  RedisNodeAddress,
} from './cache/redis/redis-cache.options.js';
export { RedisConfigurationError, RedisOperationError } from './cache/redis/redis-cache.errors.js';
export { redisKeys } from './cache/redis/redis-keys.js';
export type { PostgresPoolLike, PostgresSessionOptions } from './cache/postgres/postgres-session.options.js';
export { PostgresConfigurationError, PostgresOperationError } from './errors/postgres.errors.js';

// Session
export { Session } from './session/session.decorator.js';
export { DistributedSession } from './session/session.js';
export { SessionAccessor } from './session/session.accessor.js';
export {
  SessionStore,
  InjectSessionStore,
  type EndedSessionMark,
  type SessionEnding,
  type SessionChanges,
  type SessionCommitLimits,
  type SessionData,
} from './session/stores/session-store.interface.js';
export { MemorySessionStore, type MemorySessionStoreOptions } from './session/stores/memory-session.store.js';
export { CacheSessionStore } from './session/stores/cache-session.store.js';

// Users and their sessions
export {
  UserSessions,
  type UserSessionInfo,
  type UserSessionMetadata,
} from './users/user-sessions.service.js';
export type { UserSessionsOptions } from './users/user-sessions.options.js';
export {
  isUserSessionIndexSource,
  type LiveUserSession,
  type UserSessionIndex,
  type UserSessionIndexSource,
  type UserSessionRecord,
} from './users/user-session-index.interface.js';
export {
  UserSessionNotStoredError,
  UserSessionsUnavailableError,
  UserSessionsUnsupportedError,
} from './users/user-sessions.errors.js';

// TempData
export { TempData } from './temp-data/temp-data.decorator.js';
export { TempDataDictionary } from './temp-data/temp-data.dictionary.js';
export { TempDataAccessor } from './temp-data/temp-data.accessor.js';
export { TempDataFormatError, TempDataTooLargeError } from './errors/temp-data.errors.js';

// Request items
export { Items, Item } from './items/items.decorator.js';
export { ItemsAccessor } from './items/items.accessor.js';
export { ItemKey } from './items/item-key.js';
export { RequestItems, type RequestItemKey } from './items/request-items.js';

// Key ring and errors
export { SessionStateError } from './errors/session-state.error.js';
export { KeyRingConfigurationError } from './errors/configuration.errors.js';
export {
  SessionLockLostError,
  SessionLockTimeoutError,
  SessionNotConfiguredError,
  SessionNotLoadedError,
  SessionRequiresHttpError,
  SessionLimitExceededError,
  SessionMovedError,
  SessionUnavailableError,
  type SessionLimitName,
} from './errors/session.errors.js';
export {
  ResponseStartedError,
  SessionResponseStartedError,
  TempDataResponseStartedError,
} from './errors/response-started.errors.js';

// WebSocket gateways
export { GatewaySessions } from './gateway/gateway-sessions.service.js';
export type { GatewayHandshake } from './gateway/gateway-handshake.js';
export { GatewaySessionNotConnectedError, SessionReadOnlyError } from './errors/gateway.errors.js';
// Observability
export type {
  SessionMeterLike,
  SessionMeterProviderLike,
  SessionMetricsOptions,
} from './metrics/session-metrics.options.js';
export { SessionMetricNames } from './metrics/session-metric.names.js';
export { SessionLogEvents, type SessionLogEvent } from './logging/session-log-events.js';
