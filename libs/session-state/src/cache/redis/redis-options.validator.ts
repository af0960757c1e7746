import type { RedisCacheOptions, ResolvedRedisCacheOptions } from './redis-cache.options.js';
import { quoteRedacted } from '../../options/redact-credentials.js';
import { describeOptionValue } from '../../options/option-names.check.js';
import { RedisConfigurationError, SENTINEL_CLIENT_ADVICE } from './redis-cache.errors.js';
import { rejectUnknownRedisOptions } from './redis-option-names.check.js';
import { integerOption as integerWithin } from '../../options/integer-option.js';

const fail = (message: string): never => {
  throw new RedisConfigurationError(message);
};

function integerOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  return integerWithin(fail, `Redis option ${name}`, value, fallback, min, max);
}

function parsePort(name: string, value: unknown): number {
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    fail(`Redis option ${name} must be a TCP port from 1 to 65535 (got ${JSON.stringify(value)}).`);
  }
  return port as number;
}

function parseNode(node: unknown, index: number): { host: string; port: number } {
  const name = `clusterNodes[${index}]`;
  if (typeof node === 'string') {
    const match = /^\[?([^\]/@\s]+?)\]?:(\d+)$/.exec(node); // a host, not a URL
    if (!match) return fail(`Redis option ${name} must look like "host:port" (got ${quoteRedacted(node)}).`);
    return { host: match[1], port: parsePort(name, match[2]) };
  }
  if (node && typeof node === 'object' && typeof (node as { host?: unknown }).host === 'string') {
    const { host, port } = node as { host: string; port: unknown };
    return { host, port: parsePort(`${name}.port`, port) };
  }
  return fail(
    `Redis option ${name} must be "host:port" or { host, port } (got ${typeof node === 'string' ? quoteRedacted(node) : JSON.stringify(node)}).`,
  );
}

/**
 * A setting given both in the url and as an option: the same value twice is fine, two different ones are refused
 * (before, the option won silently: a url's password or database path was ignored).
 */
function fromUrlOnce<T>(option: string, what: string, given: T | undefined, inUrl: T): T {
  // String() so that databaseId '2' (from an environment variable) and the url's /2 agree.
  if (given !== undefined && String(given) !== String(inUrl)) {
    fail(
      `Redis options url and ${option} give two different values for the ${what}: give it once, in the url or ` +
        `in ${option}.`,
    );
  }
  return inUrl;
}

/** A url's user name or password, percent-decoded; never quoted (it may be the password). */
function decodedUrlPart(what: 'password' | 'user name', encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    // decodeURIComponent's URIError ("URI malformed") named neither the option nor the fix.
    return fail(
      `Redis option url has a ${what} with a % that does not start a percent-encoded byte (%XX): percent-encode ` +
        `the ${what} in the url (encodeURIComponent; % is %25), or give it as ` +
        `${what === 'password' ? 'accessKey' : 'username'} instead.`,
    );
  }
}

/**
 * Checks every option and applies the defaults; throws {@link RedisConfigurationError} naming the option
 * (an unknown name too, with the name it most likely meant).
 *
 * @example
 * const resolved = resolveRedisCacheOptions({ host: 'cache.internal', port: 6380, ssl: true, accessKey: secret });
 * resolveRedisCacheOptions({ port: 70000 }); // throws RedisConfigurationError naming `port`
 * resolveRedisCacheOptions({ hots: 'x' } as RedisCacheOptions); // throws: unknown option hots, did you mean host?
 */
export function resolveRedisCacheOptions(options: RedisCacheOptions): ResolvedRedisCacheOptions {
  if (!options || typeof options !== 'object')
    fail('Redis options must be an object such as { host, port }.');
  rejectUnknownRedisOptions(options);
  const sources = (['url', 'clusterNodes', 'client'] as const).filter((k) => options[k] !== undefined);
  if (sources.length > 1) {
    fail(
      `Redis options ${sources.join(' and ')} exclude each other: give only one of url, clusterNodes, client.`,
    );
  }
  if (sources.length === 1 && (options.host !== undefined || options.port !== undefined)) {
    fail(`Redis options host/port cannot be combined with ${sources[0]}: put the address in ${sources[0]}.`);
  }

  let host = options.host ?? '127.0.0.1';
  let port = options.port === undefined ? 6379 : parsePort('port', options.port);
  let accessKey = options.accessKey;
  let username = options.username;
  // Where the password comes from (a user name alone is no credential).
  let credentialsFrom: 'url' | 'options' | undefined = accessKey !== undefined ? 'options' : undefined;
  let ssl = options.ssl;
  let databaseId = options.databaseId;
  if (typeof host !== 'string' || host.length === 0) fail('Redis option host must be a non-empty host name.');

  if (options.url !== undefined) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      return fail(
        'Redis option url is not a valid URL: expected redis://[user:password@]host:port[/db] or rediss://...',
      );
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      fail(
        `Redis option url must start with redis:// or rediss:// (got ${url.protocol}//).` +
          (/sentinel/i.test(url.protocol) ? ` ${SENTINEL_CLIENT_ADVICE}` : ''),
      );
    }
    if (!url.hostname) fail('Redis option url has no host: expected redis://host:port.');
    host = url.hostname.replace(/^\[|\]$/g, '');
    port = url.port ? parsePort('url (port)', url.port) : 6379;
    if (url.password)
      accessKey = fromUrlOnce('accessKey', 'password', accessKey, decodedUrlPart('password', url.password));
    if (url.username)
      username = fromUrlOnce('username', 'user name', username, decodedUrlPart('user name', url.username));
    if (url.password) credentialsFrom ??= 'url';
    if (url.protocol === 'rediss:') {
      // A plain connection would send the password (and every session) unencrypted to a server meant for TLS.
      if (ssl === false) {
        fail(
          'Redis option url starts with rediss:// (TLS) but ssl is false: use redis:// for a plain connection, or ' +
            'remove ssl.',
        );
      }
      ssl ??= true;
    }
    const db = url.pathname.replace(/^\//, '');
    if (db !== '') {
      if (!/^\d+$/.test(db)) fail(`Redis option url has a database path "/${db}" that is not a number.`);
      databaseId = fromUrlOnce('databaseId', 'database', databaseId, Number(db));
    }
  }

  if (options.clusterNodes !== undefined && !Array.isArray(options.clusterNodes)) {
    fail(
      `Redis option clusterNodes must be an array of "host:port" or { host, port } (got ` +
        `${describeOptionValue(options.clusterNodes)}): ` +
        "write clusterNodes: ['host:port', ...].",
    );
  }
  const clusterNodes = (options.clusterNodes ?? []).map(parseNode);
  if (options.clusterNodes !== undefined && clusterNodes.length === 0) {
    fail('Redis option clusterNodes must list at least one "host:port".');
  }
  const resolvedDb = integerOption('databaseId', databaseId, 0, 0, 1_000_000);
  if (clusterNodes.length > 0 && resolvedDb !== 0) {
    fail('Redis option databaseId must be 0 with clusterNodes: Redis Cluster has a single database.');
  }

  const applicationName = options.applicationName ?? 'nest';
  if (typeof applicationName !== 'string') {
    fail(
      `Redis option applicationName must be a string (got ${describeOptionValue(applicationName)}): it prefixes ` +
        'every key of the app.',
    );
  }
  if (/[{}\s]/.test(applicationName)) {
    fail(
      `Redis option applicationName may not contain braces or spaces (got ${JSON.stringify(applicationName)}): ` +
        'braces would break the hash tag that keeps one session in one cluster slot.',
    );
  }
  if (options.client !== undefined) {
    const problem = foreignClientProblem(options.client);
    if (problem) fail(problem);
  }
  if (options.throwOnError !== undefined && typeof options.throwOnError !== 'boolean') {
    fail(
      `Redis option throwOnError must be true or false (got ${describeOptionValue(options.throwOnError)}).`,
    );
  }
  if (ssl !== undefined && typeof ssl !== 'boolean' && (typeof ssl !== 'object' || ssl === null)) {
    fail('Redis option ssl must be true, false or Node TLS options ({ ca, ... }).');
  }

  const nearCache = resolveNearCache(options, clusterNodes.length > 0);

  return {
    mode: options.client ? 'client' : clusterNodes.length > 0 ? 'cluster' : 'standalone',
    host,
    port,
    accessKey,
    credentialsFrom,
    username,
    tls: ssl === true ? {} : ssl === false || ssl === undefined ? undefined : ssl,
    databaseId: resolvedDb,
    applicationName,
    connectionTimeout: integerOption(
      'connectionTimeoutInMilliseconds',
      options.connectionTimeoutInMilliseconds,
      5000,
      1,
      600_000,
    ),
    operationTimeout: integerOption(
      'operationTimeoutInMilliseconds',
      options.operationTimeoutInMilliseconds,
      1000,
      1,
      600_000,
    ),
    retryTimeout: integerOption(
      'retryTimeoutInMilliseconds',
      options.retryTimeoutInMilliseconds,
      0,
      0,
      3_600_000,
    ),
    throwOnError: options.throwOnError ?? true,
    clusterNodes,
    client: options.client,
    waitForReplicas: integerOption('waitForReplicas', options.waitForReplicas, 0, 0, 100),
    waitForReplicasTimeout: integerOption(
      'waitForReplicasTimeoutInMilliseconds',
      options.waitForReplicasTimeoutInMilliseconds,
      500,
      1,
      600_000,
    ),
    nearCache,
  };
}

function resolveNearCache(
  options: RedisCacheOptions,
  cluster: boolean,
): ResolvedRedisCacheOptions['nearCache'] {
  const near = options.nearCache;
  if (near === undefined || near === false) return undefined;
  if (near !== true && (typeof near !== 'object' || near === null || Array.isArray(near))) {
    fail('Redis option nearCache must be true, false or { maxEntries, maxAgeInMilliseconds }.');
  }
  if (cluster || (options.client as { isCluster?: boolean } | undefined)?.isCluster) {
    fail(
      'Redis option nearCache is not available with Redis Cluster yet: remove nearCache, or use a standalone Redis.',
    );
  }
  const bounds = near === true ? {} : near;
  return {
    maxEntries: integerOption('nearCache.maxEntries', bounds.maxEntries, 10_000, 1, 10_000_000),
    maxAge: integerOption('nearCache.maxAgeInMilliseconds', bounds.maxAgeInMilliseconds, 5000, 1, 3_600_000),
  };
}

/**
 * Why `client` is not an ioredis client, or undefined. ioredis's own `defineCommand` is checked, not only a
 * `sendCommand`: node-redis (the client connect-redis takes, so the one a migrating app has) has that too and
 * failed later with a TypeError.
 */
function foreignClientProblem(client: unknown): string | undefined {
  const methods = (typeof client === 'object' && client !== null ? client : {}) as Record<string, unknown>;
  if (typeof methods.sendCommand === 'function' && typeof methods.defineCommand === 'function')
    return undefined;
  const nodeRedis = typeof methods.sendCommand === 'function' && typeof methods.isOpen === 'boolean';
  return (
    'Redis option client must be an ioredis Redis or Cluster instance' +
    (nodeRedis
      ? ' (got a node-redis client, the one connect-redis takes: build an ioredis client instead, ' +
        'new Redis(url) from ioredis, or pass redis: { url }; see docs/migrating.md).'
      : ` (got ${typeof client === 'object' && client !== null ? 'another object' : describeOptionValue(client)}): new Redis(...) or new Cluster(...) from ioredis.`)
  );
}
