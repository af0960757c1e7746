import type { DistributedCache } from '../cache/distributed-cache.interface.js';
import type { Clock } from '../cache/clock.js';
import type { RedisCacheOptions } from '../cache/redis/redis-cache.options.js';
import type { HttpRequest } from '../http/http-exchange.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';

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
  name?: string;
  /** Default `/`. */
  path?: string;
  /** Default: none (the host that set it). */
  domain?: string;
  /** Default true: scripts cannot read it. */
  httpOnly?: boolean;
  /** Default `lax`. */
  sameSite?: 'lax' | 'strict' | 'none';
  /** Default `sameAsRequest` (Secure on HTTPS requests, honouring Express's `trust proxy`). */
  securePolicy?: CookieSecurePolicy;
  /**
   * Default false: like ASP.NET, the cookie is not essential, so it is only written when
   * {@link SessionModuleOptions.hasConsent} allows tracking.
   */
  isEssential?: boolean;
}

/**
 * The exclusive per-session lock (the classic ASP.NET provider's model). Off by default.
 *
 * @example
 * SessionModule.forRoot({ session: { lock: { ttl: 30_000, acquireTimeout: 5_000, retryInterval: 25 } } });
 */
export interface SessionLockOptions {
  /** How long a lock lives if its owner dies, in ms. Default 30 000. */
  ttl?: number;
  /** How long a request waits for the lock before the session is unavailable, in ms. Default 10 000. */
  acquireTimeout?: number;
  /** Pause between attempts, in ms. Default 25. */
  retryInterval?: number;
}

/**
 * Session behaviour.
 *
 * @example
 * SessionModule.forRoot({ session: { idleTimeout: 30 * 60_000, ioTimeout: 5_000, maxSessionBytes: 512 * 1024 } });
 */
export interface SessionOptions {
  cookie?: StateCookieOptions;
  /** How long a session may be idle before its data is dropped, in ms. Default 20 minutes. */
  idleTimeout?: number;
  /** Time allowed to load or commit a session, in ms; 0 disables the limit. Default 1 minute. */
  ioTimeout?: number;
  /** Largest serialised value, in bytes. Default 256 KiB. */
  maxValueBytes?: number;
  /** Largest session (all values and keys), in bytes. Default 1 MiB. */
  maxSessionBytes?: number;
  /** Most keys in one session. Default 1000. */
  maxKeys?: number;
  /** `true` or settings: serialise requests of one session with an exclusive lock. */
  lock?: boolean | SessionLockOptions;
  /**
   * A request that does not touch the session still slides its idle timeout, unless this instance
   * slid it less than this many ms ago (saves a Redis round trip). Default: idleTimeout / 20. Must be
   * shorter than `idleTimeout`.
   */
  slideSkipWindow?: number;
}

/**
 * TempData settings.
 *
 * @example
 * SessionModule.forRoot({ tempData: { provider: 'session' } }); // keep TempData in the session, no extra cookie
 */
export interface TempDataOptions {
  /** `cookie` (default, encrypted and chunked) or `session`. */
  provider?: 'cookie' | 'session';
  cookie?: StateCookieOptions;
  /**
   * Largest encrypted TempData cookie (all chunks together), in bytes. Default 8 KiB: with the session
   * cookie and the app's own cookies it fits in Node's default 16 KiB request header limit
   * (`maxHeaderSize`). A `set` that would pass it throws TempDataTooLargeError. Raising it needs a
   * larger `maxHeaderSize` too (`node --max-http-header-size=...`), or browsers get 431.
   */
  maxCookieBytes?: number;
}

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
  secrets?: string[];
  /** Keep sessions (and the injectable DistributedCache) in Redis or Redis Cluster. */
  redis?: RedisCacheOptions;
  /** Your own DistributedCache: sessions are then stored as whole records in it. */
  cache?: DistributedCache;
  /** Your own SessionStore (wins over `redis` and `cache`). */
  store?: SessionStore;
  /** Memory store settings (the default store). */
  memory?: { sizeLimit?: number; clock?: Clock };
  session?: SessionOptions;
  tempData?: TempDataOptions;
  /**
   * Whether the visitor allows non-essential cookies (ASP.NET's CanTrack). Default: always.
   * Return false until consent is given to keep the session and TempData cookies from being written.
   */
  hasConsent?: (request: HttpRequest) => boolean;
  /**
   * Run every request inside the AsyncLocalStorage context that `SessionAccessor`, `TempDataAccessor`
   * and `ItemsAccessor` read. Default: on when a provider, controller, guard, interceptor, pipe,
   * filter or middleware injects one of them, off otherwise, because on Node 20 an active
   * AsyncLocalStorage adds a promise hook to every promise of every request. Set `true` when code
   * reaches an accessor without injecting it (`moduleRef.get(SessionAccessor)`); `@Session()`,
   * `@TempData()` and `@Items()` never need it.
   */
  asyncContext?: boolean;
}
