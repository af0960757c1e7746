// The Redis errors live with the library's other errors (errors/redis.errors.ts); re-exported here
// so the Redis modules (and the `nest-session-state/redis` entry) import them from beside them.
export { RedisConfigurationError, RedisOperationError } from '../../errors/redis.errors.js';
