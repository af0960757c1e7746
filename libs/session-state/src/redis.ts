/*
 * `nest-session-state/redis`: the Redis classes, for apps that build their own cache or store on Redis.
 * They import ioredis, so they live in their own entry; `SessionModule.forRoot({ redis })` needs none of
 * them and loads them on demand.
 */

// Redis entry (nest-session-state/redis)
export { RedisDistributedCache } from './cache/redis/redis.cache.js';
export { RedisConnection } from './cache/redis/redis.connection.js';
export { resolveRedisCacheOptions } from './cache/redis/redis-options.validator.js';
export { RedisSessionStore } from './session/stores/redis-session.store.js';
