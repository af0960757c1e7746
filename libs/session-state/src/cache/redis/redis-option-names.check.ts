import { UnknownOptionNames } from '../../options/option-names.check.js';
import {
  REDIS_CACHE_OPTION_NAMES,
  REDIS_NEAR_CACHE_OPTION_NAMES,
  REDIS_NODE_OPTION_NAMES,
  REDIS_OPTION_ALIAS_NOTES,
  REDIS_OPTION_ALIASES,
} from './redis-cache.options.js';
import { RedisConfigurationError, SENTINEL_CLIENT_ADVICE } from './redis-cache.errors.js';
import { CONNECT_REDIS_OPTIONS } from '../../options/foreign-option-names.js';

const join = (path: string, name: string): string => (path ? `${path}.${name}` : name);

/** ioredis's Sentinel options: the module takes a Sentinel client as `client` instead. */
const SENTINEL = `is not an option here: ${SENTINEL_CLIENT_ADVICE}`;
const SENTINEL_OPTIONS: Readonly<Record<string, string>> = {
  sentinels: SENTINEL,
  sentinelPassword: SENTINEL,
  sentinelUsername: SENTINEL,
};

/**
 * Throws {@link RedisConfigurationError} naming every option name the Redis options do not know, with
 * the name it most likely meant (`hots` → `host`, ioredis's `password` → `accessKey`). Walks `nearCache`
 * and the object form of `clusterNodes`; never `client` or `ssl`, which hold objects the app owns.
 *
 * @param path where the options sit: `redis` inside the SessionModule options, '' on their own.
 */
export function rejectUnknownRedisOptions(options: unknown, path = ''): void {
  const found = new UnknownOptionNames('Redis');
  const redis = found.check(
    options,
    {
      path,
      names: REDIS_CACHE_OPTION_NAMES,
      aliases: REDIS_OPTION_ALIASES,
      notes: REDIS_OPTION_ALIAS_NOTES,
      besides: SENTINEL_OPTIONS,
      foreign: CONNECT_REDIS_OPTIONS,
    },
    'an object such as { host, port }',
  );
  if (redis && typeof redis.nearCache !== 'boolean') {
    found.check(
      redis.nearCache,
      { path: join(path, 'nearCache'), names: REDIS_NEAR_CACHE_OPTION_NAMES },
      'true, false or { maxEntries, maxAgeInMilliseconds }',
    );
  }
  if (redis && Array.isArray(redis.clusterNodes)) {
    redis.clusterNodes.forEach((node: unknown, index) => {
      // Strings and malformed nodes are the validator's to report; only objects have names to check.
      if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
        found.check(node, {
          path: `${join(path, 'clusterNodes')}[${index}]`,
          names: REDIS_NODE_OPTION_NAMES,
        });
      }
    });
  }
  const message = found.message();
  if (message !== undefined) throw new RedisConfigurationError(message);
}
