import type { DistributedCache } from '../cache/distributed-cache.interface.js';
import type { Clock } from '../cache/clock.js';
import type { RedisCacheOptions } from '../cache/redis/redis-cache.options.js';
import type { PostgresSessionOptions } from '../cache/postgres/postgres-session.options.js';
import type { PlatformRequest } from '../http/http-exchange.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';
import { optionNames } from '../options/option-names.check.js';
import type { SessionMetricsOptions } from '../metrics/session-metrics.options.js';
import type { UserSessionsOptions } from '../users/user-sessions.options.js';

/**
 * A function of the platform's request ({@link PlatformRequest}: all the library reads of it). Its parameter is
 * compared both ways, as a method's is, so a function typed for Express's `Request` or Fastify's `FastifyRequest`
 * fits: the library passes the platform's own request object.
 *
 * @example
 * import type { Request } from 'express';
 * const hasConsent: PlatformRequestCallback<boolean> = (req: Request) => req.get('cookie')?.includes('consent=yes') ?? false;
 * SessionModule.forRoot({ hasConsent });
 */
export type PlatformRequestCallback<T> = {
  call(request: PlatformRequest): T;
}['call'];

/**
 * When the session and TempData cookies get the `Secure` attribute.
 *
 * @example
 * SessionModule.forRoot({ session: { cookie: { securePolicy: 'always' } } }); // HTTPS only, even behind a proxy
 */
export type CookieSecurePolicy = 'sameAsRequest' | 'always' | 'none';

/**
 * Settings of a cookie written by the library.
 *
 * @example
 * SessionModule.forRoot({
 *   session: { cookie: { name: '.Shop.Session', sameSite: 'strict', isEssential: true } },
 *   tempData: { cookie: { name: '.Shop.TempData' } },
 * });
 */
export interface StateCookieOptions {
  /** Cookie name. Session: `.Nest.Session`; TempData: `.Nest.TempData`. */
  name?: string | undefined;
  /** Default `/`. */
  path?: string | undefined;
  /** Default: none (the host that set it). */
  domain?: string | undefined;
  /** Default true: scripts cannot read it. */
  httpOnly?: boolean | undefined;
  /** Default `lax`. */
  sameSite?: 'lax' | 'strict' | 'none' | undefined;
  /** Default `sameAsRequest` (Secure on HTTPS requests, honouring Express's `trust proxy`). */
  securePolicy?: CookieSecurePolicy | undefined;
  /**
   * Default false: like ASP.NET, the cookie is not essential, so it is only written when
   * {@link SessionModuleOptions.hasConsent} allows tracking.
   */
  isEssential?: boolean | undefined;
}

/** The names of {@link StateCookieOptions}, for the startup check of unknown names. */
export const STATE_COOKIE_OPTION_NAMES = optionNames<StateCookieOptions>({
  name: true,
  path: true,
  domain: true,
  httpOnly: true,
  sameSite: true,
  securePolicy: true,
  isEssential: true,
});

/**
 * The exclusive per-session lock (the classic ASP.NET provider's model). Off by default.
 *
 * @example
 * SessionModule.forRoot({ session: { lock: { ttl: 30_000, acquireTimeout: 5_000, retryInterval: 200 } } });
 */
export interface SessionLockOptions {
  /**
   * How long a lock lives without renewal, in ms: its request renews it every third of this while it runs,
   * so this is how long a session stays locked after its holder died or stalled. A request whose lock
   * expired in a stall anyway commits nothing (`SessionLockLostError`, 409). Default 30 000.
   */
  ttl?: number | undefined;
  /** How long a request waits for the lock before the session is unavailable, in ms. Default 10 000. */
  acquireTimeout?: number | undefined;
  /**
   * The longest wait between two tries for a lock another request holds, in ms. Waits start at 5 ms
   * and double (with jitter) up to this, so a waiting request sends about a dozen tries in its first
   * second and then one per `retryInterval`. Default 200.
   */
  retryInterval?: number | undefined;
}

/** The names of {@link SessionLockOptions}. */
export const SESSION_LOCK_OPTION_NAMES = optionNames<SessionLockOptions>({
  ttl: true,
  acquireTimeout: true,
  retryInterval: true,
});

/**
 * Session behaviour.
 *
 * @example
 * SessionModule.forRoot({ session: { idleTimeout: 30 * 60_000, ioTimeout: 5_000, maxSessionBytes: 512 * 1024 } });
 */
export interface SessionOptions {
  cookie?: StateCookieOptions | undefined;
  /** How long a session may be idle before its data is dropped, in ms. Default 20 minutes. */
  idleTimeout?: number | undefined;
  /** Time allowed to load or commit a session, in ms; 0 disables the limit. Default 1 minute. */
  ioTimeout?: number | undefined;
  /** Largest serialised value, in bytes. Default 256 KiB. */
  maxValueBytes?: number | undefined;
  /** Largest session (all values and keys), in bytes. Default 1 MiB. */
  maxSessionBytes?: number | undefined;
  /** Most keys in one session. Default 1000. */
  maxKeys?: number | undefined;
  /** `true` or settings: serialise requests of one session with an exclusive lock. */
  lock?: boolean | SessionLockOptions | undefined;
  /**
   * A request that does not touch the session still slides its idle timeout, unless this instance
   * slid it less than this many ms ago (saves a Redis round trip). Default: idleTimeout / 20. Must be
   * shorter than `idleTimeout`.
   */
  slideSkipWindow?: number | undefined;
}

/** The names of {@link SessionOptions}. */
export const SESSION_OPTION_NAMES = optionNames<SessionOptions>({
  cookie: true,
  idleTimeout: true,
  ioTimeout: true,
  maxValueBytes: true,
  maxSessionBytes: true,
  maxKeys: true,
  lock: true,
  slideSkipWindow: true,
});

/**
 * TempData settings.
 *
 * @example
 * SessionModule.forRoot({ tempData: { provider: 'session' } }); // keep TempData in the session, no extra cookie
 */
export interface TempDataOptions {
  /** `cookie` (default, encrypted and chunked) or `session`. */
  provider?: 'cookie' | 'session' | undefined;
  cookie?: StateCookieOptions | undefined;
  /**
   * Largest encrypted TempData cookie (all chunks together), in bytes. Default 8 KiB: with the session
   * cookie and the app's own cookies it fits in Node's default 16 KiB request header limit
   * (`maxHeaderSize`). A `set` that would pass it throws TempDataTooLargeError. Raising it needs a
   * larger `maxHeaderSize` too (`node --max-http-header-size=...`), or browsers get 431.
   */
  maxCookieBytes?: number | undefined;
}

/** The names of {@link TempDataOptions}. */
export const TEMP_DATA_OPTION_NAMES = optionNames<TempDataOptions>({
  provider: true,
  cookie: true,
  maxCookieBytes: true,
});

/**
 * Options of `SessionModule.forRoot()`. Everything is optional: with none, sessions live in memory
 * and cookies are protected by a key generated at startup.
 *
 * @example
 * const options: SessionModuleOptions = {
 *   secrets: process.env.SESSION_SECRETS!.split(','),
 *   redis: { url: process.env.REDIS_URL, applicationName: 'shop' },
 *   session: { idleTimeout: 20 * 60_000 },
 *   hasConsent: (req) => req.headers.cookie?.includes('consent=yes') ?? false,
 * };
 * \@Module({ imports: [SessionModule.forRoot(options)] })
 */
export interface SessionModuleOptions {
  /**
   * Key ring secrets, newest first (each >= 32 random bytes). Protect with the newest, accept all:
   * add a new secret in front to rotate. Omitted: a random key that dies with the process.
   */
  secrets?: string[] | undefined;
  /** Keep sessions (and the injectable DistributedCache) in Redis or Redis Cluster. */
  redis?: RedisCacheOptions | undefined;
  /**
   * Keep sessions in PostgreSQL (needs the `pg` package). Not with `redis`, `store` or `memory`; with
   * `cache`, that cache is the injectable DistributedCache (otherwise one in memory). See docs/postgres.md.
   */
  postgres?: PostgresSessionOptions | undefined;
  /** Your own DistributedCache: sessions are then stored as whole records in it. Not with `redis` or `memory`. */
  cache?: DistributedCache | undefined;
  /**
   * Your own SessionStore. With `redis` or `cache`, the store holds the sessions and they back only the
   * injectable DistributedCache (`redis.nearCache` is then refused). Not with `memory`.
   */
  store?: SessionStore | undefined;
  /**
   * Memory store settings (the default store). Bounded by default: `maxSessions` 100 000 and
   * `sizeLimit` 128 MiB; beyond either the least recently used sessions are evicted, and the first
   * eviction is logged once. `Infinity` lifts a bound. See {@link MemorySessionStoreOptions}.
   * `cacheSizeLimit` bounds the injectable DistributedCache beside it (a `MemoryDistributedCache`):
   * bytes of values, 200 MiB by default, least recently used entries evicted beyond it; `Infinity` for none.
   */
  memory?:
    | {
        maxSessions?: number | undefined;
        sizeLimit?: number | undefined;
        cacheSizeLimit?: number | undefined;
        clock?: Clock | undefined;
      }
    | undefined;
  session?: SessionOptions | undefined;
  tempData?: TempDataOptions | undefined;
  /**
   * Whether the visitor allows non-essential cookies (ASP.NET's CanTrack). Default: always.
   * Return false until consent is given to keep the session and TempData cookies from being written.
   * Receives the platform's request: Express's `Request` or Fastify's `FastifyRequest`, which the parameter may be
   * typed as (`(req: Request) => boolean`).
   */
  hasConsent?: PlatformRequestCallback<boolean> | undefined;
  /**
   * Run every request inside the AsyncLocalStorage context that `SessionAccessor`, `TempDataAccessor`
   * and `ItemsAccessor` read. Default: on when a provider, controller, guard, interceptor, pipe,
   * filter or middleware injects one of them, off otherwise, because on Node 20 an active
   * AsyncLocalStorage adds a promise hook to every promise of every request. Set `true` when code
   * reaches an accessor without injecting it (`moduleRef.get(SessionAccessor)`); `@Session()`,
   * `@TempData()` and `@Items()` never need it.
   */
  asyncContext?: boolean | undefined;
  /** Sessions bound to users (`UserSessions`): `maxSessionsPerUser` (default 100). */
  users?: UserSessionsOptions | undefined;
  /**
   * Session metrics through OpenTelemetry: `{ meterProvider }`, `{ meter }` or `false`. Default: the
   * global MeterProvider of `@opentelemetry/api` when installed and set by an SDK at startup, else off.
   * See docs/observability.md.
   */
  metrics?: SessionMetricsOptions | undefined;
}

/** The names of {@link SessionModuleOptions}. */
export const SESSION_MODULE_OPTION_NAMES = optionNames<SessionModuleOptions>({
  secrets: true,
  redis: true,
  postgres: true,
  cache: true,
  store: true,
  memory: true,
  session: true,
  tempData: true,
  hasConsent: true,
  asyncContext: true,
  users: true,
  metrics: true,
});

/** The names of `metrics` when it is an object (`{ meterProvider }` or `{ meter }`). */
export const METRICS_OPTION_NAMES: readonly string[] = ['meterProvider', 'meter'];

/** The names of `SessionModuleOptions.memory`. */
export const MEMORY_OPTION_NAMES = optionNames<NonNullable<SessionModuleOptions['memory']>>({
  maxSessions: true,
  sizeLimit: true,
  cacheSizeLimit: true,
  clock: true,
});
