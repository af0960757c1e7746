import {
  KeyRingConfigurationError,
  PostgresConfigurationError,
  RedisConfigurationError,
  SessionConfigurationError,
  type PostgresSessionOptions,
  type RedisCacheOptions,
  type SessionModuleOptions,
} from 'nest-session-state';
import { resolveRedisCacheOptions } from 'nest-session-state/redis';

/**
 * The sample app's settings, read from environment variables (DESIGN.md, "Sample app"):
 *
 * | variable               | meaning                                                        | default |
 * | ---------------------- | -------------------------------------------------------------- | ------- |
 * | `PORT`                 | HTTP port (0: any free port)                                   | 3000    |
 * | `REDIS_URL`            | `redis://[user:password@]host:port[/db]` or `rediss://...`     | memory  |
 * | `REDIS_CLUSTER_NODES`  | comma-separated `host:port` seed nodes of a Redis Cluster      | memory  |
 * | `DATABASE_URL`         | `postgres://user:password@host:port/database`: PostgreSQL (not with the Redis variables) | memory |
 * | `SESSION_SECRETS`      | comma-separated key ring, newest first (each >= 32 random bytes) | random |
 * | `TEMPDATA_PROVIDER`    | `cookie` or `session`                                          | cookie  |
 * | `APP_NAME`             | Redis key prefix (`applicationName`)                           | nest    |
 * | `SESSION_IDLE_TIMEOUT` | idle timeout in seconds                                        | 1200    |
 * | `REDIS_NEAR_CACHE`     | `on`/`off`: the opt-in near cache (with `REDIS_URL` only)      | off     |
 * | `HTTP_ADAPTER`         | `express` or `fastify`: the Nest platform the app runs on      | express |
 */
export interface SampleAppConfig {
  readonly port: number;
  /** The Nest HTTP platform: `@nestjs/platform-express` or `@nestjs/platform-fastify`. */
  readonly platform: SamplePlatform;
  /** Passed to `SessionModule.forRoot()`. */
  readonly session: SessionModuleOptions;
  /** What the pages show in their footer. */
  readonly summary: {
    readonly store: 'memory' | 'redis' | 'redis + near cache' | 'redis cluster' | 'postgres';
    readonly tempDataProvider: 'cookie' | 'session';
    readonly idleTimeoutSeconds: number;
    readonly sharedSecrets: boolean;
  };
  /** Notes for the startup log (e.g. a variable that has no effect). */
  readonly warnings: readonly string[];
}

/** The values of `HTTP_ADAPTER`. */
export const SAMPLE_PLATFORMS = ['express', 'fastify'] as const;
export type SamplePlatform = (typeof SAMPLE_PLATFORMS)[number];

export type Environment = Readonly<Record<string, string | undefined>>;

/** A bad environment variable: the message starts with its name. */
export class SampleConfigError extends Error {
  override readonly name = 'SampleConfigError';

  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

const DEFAULT_PORT = 3000;
const DEFAULT_IDLE_TIMEOUT_SECONDS = 1200;
/** setTimeout and Redis PEXPIRE both cope with this; a year is plenty for a session. */
const MAX_IDLE_TIMEOUT_SECONDS = 365 * 24 * 3600;

/** Reads and validates the environment; throws {@link SampleConfigError} naming the first bad variable. */
export function loadSampleConfig(env: Environment = process.env): SampleAppConfig {
  const warnings: string[] = [];
  const port = readPort(env);
  const platform = readPlatform(env);
  const idleTimeoutSeconds = readIdleTimeout(env);
  const tempDataProvider = readTempDataProvider(env);
  const secrets = readSecrets(env);
  const postgres = readPostgres(env);
  const redis = readRedis(env, warnings, postgres !== undefined);

  const session: SessionModuleOptions = {
    session: { idleTimeout: idleTimeoutSeconds * 1000 },
    tempData: { provider: tempDataProvider },
    ...(secrets ? { secrets } : {}),
    ...(redis ? { redis } : {}),
    ...(postgres ? { postgres } : {}),
  };
  return {
    port,
    platform,
    session,
    summary: {
      store: redis
        ? redis.clusterNodes
          ? 'redis cluster'
          : redis.nearCache
            ? 'redis + near cache'
            : 'redis'
        : postgres
          ? 'postgres'
          : 'memory',
      tempDataProvider,
      idleTimeoutSeconds,
      sharedSecrets: secrets !== undefined,
    },
    warnings,
  };
}

/**
 * Turns an error thrown while the app starts into one that names the environment variable behind it
 * (the library's configuration errors name its options, which a person running `npm start` never wrote).
 */
export function explainStartupError(error: unknown, env: Environment = process.env): Error {
  if (!(error instanceof Error) || error instanceof SampleConfigError) {
    return error instanceof Error ? error : new Error(String(error));
  }
  let variable: string | undefined;
  if (error instanceof KeyRingConfigurationError) variable = 'SESSION_SECRETS';
  else if (error instanceof PostgresConfigurationError) variable = 'DATABASE_URL';
  else if (error instanceof RedisConfigurationError) {
    if (/applicationName/.test(error.message) && env.APP_NAME !== undefined) variable = 'APP_NAME';
    else if (/nearCache/.test(error.message) && present(env.REDIS_NEAR_CACHE)) variable = 'REDIS_NEAR_CACHE';
    else variable = redisVariable(env);
  } else if (error instanceof SessionConfigurationError) {
    if (/idleTimeout/.test(error.message)) variable = 'SESSION_IDLE_TIMEOUT';
    else if (/tempData/.test(error.message)) variable = 'TEMPDATA_PROVIDER';
  }
  if (!variable) return error;
  return new SampleConfigError(variable, error.message);
}

function redisVariable(env: Environment): string | undefined {
  if (present(env.REDIS_URL)) return 'REDIS_URL';
  if (present(env.REDIS_CLUSTER_NODES)) return 'REDIS_CLUSTER_NODES';
  return undefined;
}

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

function readPort(env: Environment): number {
  if (!present(env.PORT)) return DEFAULT_PORT;
  const text = env.PORT.trim();
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new SampleConfigError(
      'PORT',
      `expected a port number from 0 to 65535, got ${JSON.stringify(env.PORT)}.`,
    );
  }
  return port;
}

function readPlatform(env: Environment): SamplePlatform {
  if (!present(env.HTTP_ADAPTER)) return 'express';
  const value = env.HTTP_ADAPTER.trim().toLowerCase();
  const platform = SAMPLE_PLATFORMS.find((p) => p === value);
  if (!platform) {
    throw new SampleConfigError(
      'HTTP_ADAPTER',
      `expected "express" (default) or "fastify", got ${JSON.stringify(env.HTTP_ADAPTER)}.`,
    );
  }
  return platform;
}

function readIdleTimeout(env: Environment): number {
  if (!present(env.SESSION_IDLE_TIMEOUT)) return DEFAULT_IDLE_TIMEOUT_SECONDS;
  const text = env.SESSION_IDLE_TIMEOUT.trim();
  const seconds = Number(text);
  if (!/^\d+$/.test(text) || seconds < 1 || seconds > MAX_IDLE_TIMEOUT_SECONDS) {
    throw new SampleConfigError(
      'SESSION_IDLE_TIMEOUT',
      `expected whole seconds from 1 to ${MAX_IDLE_TIMEOUT_SECONDS} (default ${DEFAULT_IDLE_TIMEOUT_SECONDS}), ` +
        `got ${JSON.stringify(env.SESSION_IDLE_TIMEOUT)}.`,
    );
  }
  return seconds;
}

function readTempDataProvider(env: Environment): 'cookie' | 'session' {
  if (!present(env.TEMPDATA_PROVIDER)) return 'cookie';
  const value = env.TEMPDATA_PROVIDER.trim().toLowerCase();
  if (value !== 'cookie' && value !== 'session') {
    throw new SampleConfigError(
      'TEMPDATA_PROVIDER',
      `expected "cookie" or "session", got ${JSON.stringify(env.TEMPDATA_PROVIDER)}.`,
    );
  }
  return value;
}

function readSecrets(env: Environment): string[] | undefined {
  if (env.SESSION_SECRETS === undefined) return undefined;
  const secrets = splitList(env.SESSION_SECRETS);
  if (secrets.length === 0) {
    throw new SampleConfigError(
      'SESSION_SECRETS',
      'is set but lists no secret: give one or more comma-separated secrets (each >= 32 random bytes, ' +
        'e.g. `openssl rand -base64 32`), newest first, or unset it.',
    );
  }
  return secrets;
}

/** `DATABASE_URL`: sessions in PostgreSQL. The module checks the rest at startup (named DATABASE_URL then). */
function readPostgres(env: Environment): PostgresSessionOptions | undefined {
  if (!present(env.DATABASE_URL)) return undefined;
  const other = redisVariable(env);
  if (other !== undefined) {
    throw new SampleConfigError(
      'DATABASE_URL',
      `cannot be combined with ${other}: sessions live in one store. Set DATABASE_URL for PostgreSQL or ` +
        'REDIS_URL / REDIS_CLUSTER_NODES for Redis, not both.',
    );
  }
  const url = env.DATABASE_URL.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SampleConfigError(
      'DATABASE_URL',
      'is not a valid URL: expected postgres://user:password@host:port/database.',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new SampleConfigError(
      'DATABASE_URL',
      `must start with postgres:// or postgresql:// (got ${parsed.protocol}//).`,
    );
  }
  return { connectionString: url };
}

function readRedis(env: Environment, warnings: string[], onPostgres: boolean): RedisCacheOptions | undefined {
  const url = present(env.REDIS_URL) ? env.REDIS_URL.trim() : undefined;
  const nodesText = present(env.REDIS_CLUSTER_NODES) ? env.REDIS_CLUSTER_NODES : undefined;
  if (url !== undefined && nodesText !== undefined) {
    throw new SampleConfigError(
      'REDIS_URL',
      'cannot be combined with REDIS_CLUSTER_NODES: set REDIS_URL for one Redis server or ' +
        'REDIS_CLUSTER_NODES for a cluster, not both.',
    );
  }
  const appName = env.APP_NAME !== undefined ? env.APP_NAME.trim() : undefined;
  if (appName !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(appName)) {
    throw new SampleConfigError(
      'APP_NAME',
      `expected 1 to 64 letters, digits or . _ : - (it prefixes every Redis key), got ${JSON.stringify(env.APP_NAME)}.`,
    );
  }
  const nearCache = readNearCache(env);
  if (url === undefined && nodesText === undefined) {
    if (appName !== undefined) {
      warnings.push(
        `APP_NAME has no effect without REDIS_URL or REDIS_CLUSTER_NODES${onPostgres ? ' (PostgreSQL keeps sessions in the table nest_sessions)' : ''}.`,
      );
    }
    if (nearCache) warnings.push('REDIS_NEAR_CACHE has no effect without REDIS_URL.');
    return undefined;
  }
  if (nearCache && url === undefined) {
    throw new SampleConfigError(
      'REDIS_NEAR_CACHE',
      'works with REDIS_URL only (the near cache is not available with a Redis Cluster): unset it or use REDIS_URL.',
    );
  }

  const variable = url !== undefined ? 'REDIS_URL' : 'REDIS_CLUSTER_NODES';
  const options: RedisCacheOptions =
    url !== undefined ? { url: checkRedisUrl(url) } : { clusterNodes: parseClusterNodes(nodesText!) };
  if (appName !== undefined) options.applicationName = appName;
  if (nearCache) options.nearCache = true;
  try {
    resolveRedisCacheOptions(options);
  } catch (error) {
    if (error instanceof RedisConfigurationError) {
      const named = appName !== undefined && /applicationName/.test(error.message) ? 'APP_NAME' : variable;
      throw new SampleConfigError(named, error.message);
    }
    throw error;
  }
  return options;
}

function readNearCache(env: Environment): boolean {
  if (!present(env.REDIS_NEAR_CACHE)) return false;
  const value = env.REDIS_NEAR_CACHE.trim().toLowerCase();
  if (value === 'on' || value === 'true' || value === '1') return true;
  if (value === 'off' || value === 'false' || value === '0') return false;
  throw new SampleConfigError(
    'REDIS_NEAR_CACHE',
    `expected on or off, got ${JSON.stringify(env.REDIS_NEAR_CACHE)}.`,
  );
}

function checkRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SampleConfigError(
      'REDIS_URL',
      'is not a valid URL: expected redis://[user:password@]host:port[/db] or rediss://... (TLS).',
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new SampleConfigError(
      'REDIS_URL',
      `must start with redis:// or rediss:// (got ${parsed.protocol}//).`,
    );
  }
  return url;
}

/** `"h1:7000, h2:7001"` or `"[::1]:7000"` to `{ host, port }` pairs. */
export function parseClusterNodes(text: string): { host: string; port: number }[] {
  const items = splitList(text);
  if (items.length === 0) {
    throw new SampleConfigError(
      'REDIS_CLUSTER_NODES',
      'lists no node: expected comma-separated host:port pairs.',
    );
  }
  return items.map((item) => {
    const colon = item.lastIndexOf(':');
    const host = (colon > 0 ? item.slice(0, colon) : '').replace(/^\[(.*)\]$/, '$1');
    const portText = colon > 0 ? item.slice(colon + 1) : '';
    const port = Number(portText);
    if (host === '' || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new SampleConfigError(
        'REDIS_CLUSTER_NODES',
        `expected comma-separated host:port pairs such as 127.0.0.1:7000,127.0.0.1:7001, got ${JSON.stringify(item)}.`,
      );
    }
    return { host, port };
  });
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
