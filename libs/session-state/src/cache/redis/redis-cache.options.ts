import type { ConnectionOptions } from 'node:tls';
import { optionNames } from '../../options/option-names.check.js';

/**
 * A cluster node as `"host:port"` or an object.
 *
 * @example
 * const nodes: RedisNodeAddress[] = ['10.0.0.1:7000', { host: '10.0.0.2', port: 7000 }];
 * SessionModule.forRoot({ redis: { clusterNodes: nodes } });
 */
export type RedisNodeAddress = string | { host: string; port: number };

/** The names of a cluster node given as an object. */
export const REDIS_NODE_OPTION_NAMES = optionNames<Exclude<RedisNodeAddress, string>>({
  host: true,
  port: true,
});

/**
 * An ioredis `Redis` or `Cluster` instance. Typed by its shape rather than by ioredis' classes, so that
 * the module's options compile in apps that do not install ioredis (the memory store needs none).
 *
 * @example
 * import { Redis } from 'ioredis';
 * SessionModule.forRoot({ redis: { client: new Redis(process.env.REDIS_URL!) } });
 */
export interface RedisClientLike {
  readonly status: string;
  sendCommand(...args: never[]): unknown;
  disconnect(reconnect?: boolean): void;
}

/**
 * Where and how to reach Redis: the options of ASP.NET's Redis session state provider, plus a URL,
 * cluster nodes or an existing ioredis client. Give one of `host`, `url`, `clusterNodes`, `client`.
 *
 * @example
 * SessionModule.forRoot({
 *   redis: { host: 'cache.internal', port: 6380, ssl: true, accessKey: process.env.REDIS_PASSWORD,
 *            applicationName: 'shop', operationTimeoutInMilliseconds: 500, retryTimeoutInMilliseconds: 2_000 },
 * });
 */
export interface RedisCacheOptions {
  /** Server host name. Default `127.0.0.1` when neither `url`, `clusterNodes` nor `client` is given. */
  host?: string | undefined;
  /** Server port (the TLS port when `ssl` is on). Default 6379. */
  port?: number | undefined;
  /** Redis password (AUTH); with `username` for ACL users. */
  accessKey?: string | undefined;
  /** ACL user name for `accessKey`. */
  username?: string | undefined;
  /** TLS: `true`, or Node TLS options (for a private CA: `{ ca }`). Default false. */
  ssl?: boolean | ConnectionOptions | undefined;
  /** Database number (standalone only). Default 0. */
  databaseId?: number | undefined;
  /**
   * Prefix of every key, so several apps can share one Redis: sessions live in
   * `{<applicationName>_<sessionKey>}_Data`. Default `nest`. May not contain `{` or `}`.
   */
  applicationName?: string | undefined;
  /** Time allowed to connect at startup and on reconnects, in ms. Default 5000. */
  connectionTimeoutInMilliseconds?: number | undefined;
  /** Time allowed to one Redis operation, in ms. Default 1000. */
  operationTimeoutInMilliseconds?: number | undefined;
  /**
   * Failed operations are retried during this interval: first after 20 ms, then every second until
   * it expires, then one final time. Default 0: no retries.
   */
  retryTimeoutInMilliseconds?: number | undefined;
  /**
   * `true` (default): failures reach the caller (a session request gets a 503).
   * `false`: failures are swallowed, logged and kept as {@link RedisDistributedCache.lastError};
   * the session becomes unavailable for the request and the request continues.
   */
  throwOnError?: boolean | undefined;
  /**
   * Durability: a session commit succeeds only once this many replicas acknowledged it (Redis WAIT,
   * sent in the same round trip). Redis replicates asynchronously, so without it a commit confirmed
   * just before a master dies can be lost in the failover. Costs the replication latency on every
   * commit. Default 0 (off).
   */
  waitForReplicas?: number | undefined;
  /** How long a commit waits for `waitForReplicas` acknowledgements, in ms. Default 500. */
  waitForReplicasTimeoutInMilliseconds?: number | undefined;
  /** `redis://[user:password@]host:port/db` or `rediss://...` (TLS). */
  url?: string | undefined;
  /** Redis Cluster seed nodes; keys of one session share a hash slot. */
  clusterNodes?: RedisNodeAddress[] | undefined;
  /** An ioredis `Redis` or `Cluster` the app already made; the module does not close it. */
  client?: RedisClientLike | undefined;
  /**
   * Opt-in: keep recently used sessions in this process too, so a session read needs no script and
   * no transfer of the session. Kept coherent by Redis invalidations (CLIENT TRACKING, Redis 6+), and
   * each copy is served only after a PING on the invalidation connection confirmed that every
   * invalidation sent before the request has arrived: a request never misses a commit that completed
   * (on any instance) before it arrived. Standalone Redis only. `true` for the defaults. See
   * docs/near-cache.md.
   */
  nearCache?: boolean | RedisNearCacheOptions | undefined;
}

/** The names of {@link RedisCacheOptions}, for the startup check of unknown names. */
export const REDIS_CACHE_OPTION_NAMES = optionNames<RedisCacheOptions>({
  host: true,
  port: true,
  accessKey: true,
  username: true,
  ssl: true,
  databaseId: true,
  applicationName: true,
  connectionTimeoutInMilliseconds: true,
  operationTimeoutInMilliseconds: true,
  retryTimeoutInMilliseconds: true,
  throwOnError: true,
  waitForReplicas: true,
  waitForReplicasTimeoutInMilliseconds: true,
  url: true,
  clusterNodes: true,
  client: true,
  nearCache: true,
});

/** ioredis's (and other clients') names for options that are spelt the seed's way here. */
export const REDIS_OPTION_ALIASES = {
  password: 'accessKey',
  user: 'username',
  tls: 'ssl',
  db: 'databaseId',
  database: 'databaseId',
  keyPrefix: 'applicationName',
  prefix: 'applicationName',
  connectTimeout: 'connectionTimeoutInMilliseconds',
  commandTimeout: 'operationTimeoutInMilliseconds',
  nodes: 'clusterNodes',
  cluster: 'clusterNodes',
} as const satisfies Readonly<Record<string, keyof RedisCacheOptions>>;

/**
 * For the aliases whose suggestion moves where sessions live: 0.1.0 ignored these names, so the sessions of an
 * app that set one are where applicationName and databaseId (or their defaults) put them.
 */
const MOVES_SESSIONS =
  'nest-session-state 0.1.0 ignored it: an app upgraded from 0.1.0 has its sessions where applicationName and ' +
  'databaseId (or a url path, or their defaults) put them, and changing those starts every session anew; to keep ' +
  'them, remove the option. (Sessions of connect-redis are not read in any case: see docs/migrating.md.)';

/** By the unknown name, lower-cased (the suggestion ignores case too). */
export const REDIS_OPTION_ALIAS_NOTES: Readonly<Record<string, string>> = {
  keyprefix: MOVES_SESSIONS,
  prefix: MOVES_SESSIONS,
  db: MOVES_SESSIONS,
  database: MOVES_SESSIONS,
};

/**
 * Bounds of the near cache (`redis.nearCache`).
 *
 * @example
 * SessionModule.forRoot({ redis: { url, nearCache: { maxEntries: 50_000, maxAgeInMilliseconds: 2_000 } } });
 */
export interface RedisNearCacheOptions {
  /** Most sessions kept; the oldest are dropped beyond it. Default 10000. */
  maxEntries?: number | undefined;
  /**
   * Longest time a copy is used without reading Redis again, in ms: the staleness bound if
   * invalidations were lost without the connection noticing. Default 5000.
   */
  maxAgeInMilliseconds?: number | undefined;
}

/** The names of {@link RedisNearCacheOptions}. */
export const REDIS_NEAR_CACHE_OPTION_NAMES = optionNames<RedisNearCacheOptions>({
  maxEntries: true,
  maxAgeInMilliseconds: true,
});

/** Options after validation and defaults. */
export interface ResolvedRedisCacheOptions {
  readonly mode: 'standalone' | 'cluster' | 'client';
  readonly host: string;
  readonly port: number;
  readonly accessKey?: string;
  readonly username?: string;
  /** Where the password was given, for startup errors that name the option to fix. */
  readonly credentialsFrom?: 'url' | 'options';
  readonly tls?: ConnectionOptions;
  readonly databaseId: number;
  readonly applicationName: string;
  readonly connectionTimeout: number;
  readonly operationTimeout: number;
  readonly retryTimeout: number;
  readonly throwOnError: boolean;
  readonly clusterNodes: readonly { host: string; port: number }[];
  readonly client?: RedisClientLike;
  readonly waitForReplicas: number;
  readonly waitForReplicasTimeout: number;
  /** undefined: no near cache. */
  readonly nearCache?: { readonly maxEntries: number; readonly maxAge: number };
}
