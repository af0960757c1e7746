import { REDIS_CACHE_OPTION_NAMES } from '../cache/redis/redis-cache.options.js';
import { USER_SESSIONS_OPTION_NAMES } from '../users/user-sessions.options.js';
import {
  POSTGRES_OPTION_ALIASES,
  POSTGRES_OPTION_NAMES,
} from '../cache/postgres/postgres-session.options.js';
import { UnknownOptionNames, type OptionLevel } from '../options/option-names.check.js';
import {
  COOKIE_EXPIRY_OPTIONS,
  EXPRESS_SESSION_OPTIONS_AT_ROOT,
  EXPRESS_SESSION_OPTIONS_IN_SESSION,
} from '../options/foreign-option-names.js';
import {
  MEMORY_OPTION_NAMES,
  METRICS_OPTION_NAMES,
  SESSION_LOCK_OPTION_NAMES,
  SESSION_MODULE_OPTION_NAMES,
  SESSION_OPTION_NAMES,
  STATE_COOKIE_OPTION_NAMES,
  TEMP_DATA_OPTION_NAMES,
} from './session-module.options.js';

const SESSION_COOKIE = {
  path: 'session.cookie',
  names: STATE_COOKIE_OPTION_NAMES,
  foreign: COOKIE_EXPIRY_OPTIONS,
};
const TEMP_DATA_COOKIE = {
  path: 'tempData.cookie',
  names: STATE_COOKIE_OPTION_NAMES,
  foreign: COOKIE_EXPIRY_OPTIONS,
};

const ROOT: OptionLevel = {
  path: '',
  names: SESSION_MODULE_OPTION_NAMES,
  besides: {
    isGlobal:
      'is not a session option: give it to SessionModule.forRoot({ isGlobal, ... }) or ' +
      'SessionModule.forRootAsync({ isGlobal, useFactory, ... }) itself, not in what the factory returns.',
  },
  foreign: EXPRESS_SESSION_OPTIONS_AT_ROOT,
  // Names that belong one level down (`idleTimeout` → `session.idleTimeout`, `url` → `redis.url`).
  elsewhere: [
    { path: 'session', names: SESSION_OPTION_NAMES },
    SESSION_COOKIE,
    { path: 'tempData', names: TEMP_DATA_OPTION_NAMES },
    { path: 'memory', names: MEMORY_OPTION_NAMES },
    { path: 'users', names: USER_SESSIONS_OPTION_NAMES },
    { path: 'redis', names: REDIS_CACHE_OPTION_NAMES },
    { path: 'postgres', names: POSTGRES_OPTION_NAMES },
  ],
};

/**
 * Every name in the module options that SessionModuleOptions does not know, one line each with the
 * name it most likely meant; undefined when all are known. Walks `session`, `session.cookie`,
 * `session.lock`, `tempData`, `tempData.cookie`, `memory`, `users`, `metrics` and `postgres` (`redis` is
 * rejectUnknownRedisOptions's), never `cache`, `store`, `memory.clock`, `postgres.pool`, `postgres.clock`,
 * `hasConsent` or `secrets`: those hold the app's own objects.
 */
export function unknownSessionOptionNames(options: unknown): string | undefined {
  const found = new UnknownOptionNames('SessionModule');
  const root = found.check(options, ROOT);
  const session = found.check(root?.session, {
    path: 'session',
    names: SESSION_OPTION_NAMES,
    elsewhere: [SESSION_COOKIE],
    foreign: EXPRESS_SESSION_OPTIONS_IN_SESSION,
  });
  found.check(session?.cookie, SESSION_COOKIE);
  if (typeof session?.lock !== 'boolean') {
    found.check(
      session?.lock,
      { path: 'session.lock', names: SESSION_LOCK_OPTION_NAMES },
      'true, false or { ttl, acquireTimeout, retryInterval }',
    );
  }
  const tempData = found.check(root?.tempData, {
    path: 'tempData',
    names: TEMP_DATA_OPTION_NAMES,
    elsewhere: [TEMP_DATA_COOKIE],
  });
  found.check(tempData?.cookie, TEMP_DATA_COOKIE);
  found.check(root?.memory, { path: 'memory', names: MEMORY_OPTION_NAMES });
  found.check(root?.users, { path: 'users', names: USER_SESSIONS_OPTION_NAMES });
  // A plain object only: a MeterProvider given without its name gets the metrics loader's own message.
  const metrics = root?.metrics;
  if (
    typeof metrics === 'object' &&
    metrics !== null &&
    Object.getPrototypeOf(metrics) === Object.prototype
  ) {
    found.check(metrics, { path: 'metrics', names: METRICS_OPTION_NAMES });
  }
  found.check(
    root?.postgres,
    { path: 'postgres', names: POSTGRES_OPTION_NAMES, aliases: POSTGRES_OPTION_ALIASES },
    'an object such as { connectionString }',
  );
  return found.message();
}
