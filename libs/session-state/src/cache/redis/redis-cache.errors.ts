// The Redis errors live with the library's other errors (errors/redis.errors.ts); re-exported here
// so the Redis modules (and the `nest-session-state/redis` entry) import them from beside them.
export { RedisConfigurationError, RedisOperationError } from '../../errors/redis.errors.js';

/** What to do for Redis Sentinel, for the messages that refuse the setups the module cannot use (docs/redis.md). */
export const SENTINEL_CLIENT_ADVICE =
  'For Redis Sentinel, pass an ioredis client built with { sentinels, name, failoverDetector: true } as client ' +
  '(docs/redis.md, "Redis Sentinel").';
