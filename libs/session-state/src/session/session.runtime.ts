import { LockReleases, MAX_TRIES_WAIT } from './lock-releases.js';
import { Logger } from '@nestjs/common';
import { readCookie, readCookieValues } from '../http/cookie-header.js';
import type { HttpExchange } from '../http/http-exchange.js';
import { RateLimitedLog } from '../http/rate-limited-log.js';
import { browserOnPlainHttpRemotely } from '../http/loopback-host.js';
import type { CookieAttributes } from '../http/set-cookie.js';
import { systemClock, type Clock } from '../cache/clock.js';
import { Deadlines } from '../cache/deadlines.js';
import type { ResolvedCookieOptions, ResolvedSessionOptions } from '../module/session-options.resolver.js';
import { AuthenticatedEncryptor } from '../protection/authenticated-encryptor.js';
import { CookieSigner, type Unprotected } from '../protection/cookie-signer.js';
import type { KeyRing } from '../protection/key-ring.js';
import type { SessionMetrics } from '../metrics/session-metrics.js';
import { MemorySessionStore } from './stores/memory-session.store.js';
import type { SessionCommitLimits, SessionStore } from './stores/session-store.interface.js';
import { SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** Most cookies of the session cookie's name verified per request (each costs an HMAC per secret). */
const MAX_SAME_NAME_COOKIES_VERIFIED = 8;
/** Most cookies of that name looked at per request: one that is not even shaped as a signed key costs no HMAC. */
const MAX_SAME_NAME_COOKIES_READ = 64;

/** A store call the request stopped waiting for (`session.ioTimeout`): it may still run, and apply, later. */
export class IoTimeoutError extends Error {
  constructor(ioTimeout: number) {
    super(`session store did not answer within ioTimeout=${ioTimeout} ms`);
  }
}

/** Most session keys remembered as recently slid; beyond it the memory is dropped, not grown. */
const SLID_MEMORY_LIMIT = 50_000;

/**
 * Everything the per-request session machinery shares: options, store, protection, logs, and the
 * memory of recently slid sessions. One per application.
 */
@HiddenFromLogs()
export class SessionRuntime {
  readonly logger = new Logger('Session');
  readonly badCookieLog = new RateLimitedLog(this.logger);
  readonly storeFailureLog = new RateLimitedLog(this.logger);
  private readonly consentFailureLog = new RateLimitedLog(this.logger);
  /** Cookies written in a way browsers reject (a misconfiguration seen per request). */
  private readonly rejectedCookieLog = new RateLimitedLog(this.logger);
  readonly signer: CookieSigner;
  readonly tempDataEncryptor: AuthenticatedEncryptor;
  /**
   * The store, when requests may load and commit it without promises: the in-process default store
   * (not a subclass, which may override `load`), without `session.lock` (locking waits).
   */
  readonly inProcessStore: MemorySessionStore | undefined;
  private readonly slid = new Map<string, number>();
  private readonly deadlines: Deadlines;
  /** The store's calls settle within `ioTimeout` on their own: no deadline of ours is armed. */
  private readonly storeBoundsItself: boolean;
  private readonly ioTimeoutError: () => Error;

  /** Commit limits that limit nothing but the wait (`ioTimeout`): for the carry-over of other requests' values. */
  readonly unlimited: SessionCommitLimits;
  /** Lock releases that failed, tried again in the background (`session.lock`). */
  readonly lockReleases: LockReleases;

  constructor(
    readonly options: ResolvedSessionOptions,
    readonly store: SessionStore,
    readonly keyRing: KeyRing,
    /** The store's clock, so "recently slid" agrees with the store's idea of time. */
    private readonly clock: Clock = systemClock,
    /** The session instruments; undefined when metrics are off (nothing is measured then). */
    readonly metrics?: SessionMetrics,
  ) {
    this.signer = new CookieSigner(keyRing, 'session-cookie');
    this.tempDataEncryptor = new AuthenticatedEncryptor(keyRing, 'temp-data-cookie');
    this.deadlines = new Deadlines(options.ioTimeout);
    this.unlimited = {
      maxKeys: Number.MAX_SAFE_INTEGER,
      maxSessionBytes: Number.MAX_SAFE_INTEGER,
      ioTimeout: options.ioTimeout,
    };
    this.storeBoundsItself =
      store.inProcess === true ||
      options.ioTimeout <= 0 ||
      (store.settlesWithinMs !== undefined && store.settlesWithinMs <= options.ioTimeout);
    this.inProcessStore =
      store instanceof MemorySessionStore && store.inProcess && !options.lock ? store : undefined;
    this.ioTimeoutError = () => new IoTimeoutError(options.ioTimeout);
    this.lockReleases = new LockReleases(
      (key, token) => this.withIoTimeout(store.unlock!(key, token)),
      Math.min(store.settlesWithinMs ?? MAX_TRIES_WAIT, MAX_TRIES_WAIT),
    );
  }

  /** Set by {@link close}: a store failure after it is the shutdown, not an outage. */
  private closed = false;

  /** Stops what runs in the background and releases the locks still held (the application shuts down). */
  close(): Promise<void> {
    this.closed = true;
    return this.lockReleases.close();
  }

  /**
   * A store failure's message as the logs give it: after {@link close}, said to be the shutdown (a request still
   * running when the module closed its store connection), not left to read as an outage.
   */
  failureText(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    return this.closed
      ? `${message} (the application is shutting down: the session module had closed its store connection)`
      : message;
  }

  /** Cookie attributes for this request (Secure follows the policy). */
  cookieAttributes(exchange: HttpExchange, cookie: ResolvedCookieOptions): CookieAttributes {
    const secure =
      cookie.securePolicy === 'always' || (cookie.securePolicy === 'sameAsRequest' && exchange.isSecure());
    // '_': a __Host- or __Secure- name, which browsers accept only with Secure (a cheap test first: every cookie write).
    if (!secure && cookie.name.charCodeAt(0) === 95 && /^__(Host|Secure)-/i.test(cookie.name)) {
      this.rejectedCookieLog.write(
        SessionLogEvents.CookiePrefixNotSecure,
        `The cookie ${cookie.name} has a name prefix browsers accept only with Secure, but this request is not HTTPS, ` +
          'so it goes out without Secure and browsers reject it (a new session on every request): serve the app over ' +
          'HTTPS (behind a proxy, enable trust proxy so the request reads as HTTPS), or use a name without the prefix ' +
          'where the app runs on plain HTTP.',
      );
    }
    if (
      cookie.securePolicy === 'always' &&
      !exchange.isSecure() &&
      browserOnPlainHttpRemotely(exchange.requestHeaders)
    ) {
      this.rejectedCookieLog.write(
        SessionLogEvents.SecureCookieOverHttp,
        `The cookie ${cookie.name} goes out with Secure (securePolicy 'always'), but this request is plain HTTP, and ` +
          'browsers ignore a Secure cookie set over HTTP (except from localhost): a new session on every request. ' +
          'Serve the app over HTTPS (behind a proxy, enable trust proxy so the request reads as HTTPS), or use ' +
          "securePolicy 'sameAsRequest'.",
      );
    }
    if (cookie.sameSite === 'none' && !secure) {
      this.rejectedCookieLog.write(
        SessionLogEvents.CookieSameSiteNoneNotSecure,
        `The cookie ${cookie.name} is SameSite=None on a request that is not HTTPS, so it goes out without Secure and ` +
          'browsers reject it: serve the app over HTTPS (behind a proxy, enable trust proxy so the request reads as ' +
          "HTTPS), or use sameSite 'lax'.",
      );
    }
    return {
      path: cookie.path,
      domain: cookie.domain,
      httpOnly: cookie.httpOnly,
      sameSite: cookie.sameSite,
      secure,
    };
  }

  /** Whether a cookie of these options may be written for this request (consent). */
  mayWriteCookie(exchange: HttpExchange, cookie: ResolvedCookieOptions): boolean {
    return cookie.isEssential || this.consentOf(exchange);
  }

  /**
   * The app's `hasConsent` for the request. Only `true` is consent: a `hasConsent` that throws, or returns anything
   * but a boolean (a Promise, from an async lookup; a string), is the app's bug, logged as such, and writes no cookie
   * (no consent is what it could prove), rather than a store outage's 503 or a cookie without consent.
   */
  private consentOf(exchange: HttpExchange): boolean {
    let consent: unknown;
    try {
      consent = this.options.hasConsent(exchange.request);
    } catch (error) {
      this.consentCheckFailed(`threw (${error instanceof Error ? error.message : String(error)})`);
      return false;
    }
    if (typeof consent === 'boolean') return consent;
    this.consentCheckFailed(`returned ${describeConsent(consent)} instead of true or false`);
    return false;
  }

  private consentCheckFailed(what: string): void {
    this.consentFailureLog.write(
      SessionLogEvents.ConsentCheckFailed,
      `The SessionModule option hasConsent ${what}: no session or TempData cookie was written for the request, as ` +
        'without consent. hasConsent must return true or false synchronously (read the consent cookie from ' +
        'request.headers.cookie).',
    );
  }

  /** Runs a store operation bounded by `ioTimeout`. */
  withIoTimeout<T>(operation: Promise<T>): Promise<T> {
    if (this.storeBoundsItself) return operation;
    return this.deadlines.bound(operation, this.options.ioTimeout, this.ioTimeoutError);
  }

  /**
   * The verified session key from the request's `Cookie` header, or undefined (no cookie, or one that fails
   * verification: logged, rate-limited, without its value).
   */
  sessionKeyOf(cookieHeader: string | undefined): Unprotected<string> | undefined {
    const name = this.options.cookie.name;
    const raw = readCookie(cookieHeader, name);
    if (raw === undefined) return undefined;
    const verified = raw === '' ? undefined : this.signer.verify(raw);
    if (verified) return verified;
    // The browser may hold other cookies of this name (another path or domain, sent first): one that fails
    // verification (another key ring's, garbage planted for a sub-path) does not sign the user out; the first that
    // verifies is read.
    // Only values shaped as a signed key count against the limit of verifications: garbage in front of the real
    // cookie (it costs no HMAC) cannot push it out of reach.
    let rejected = raw !== '';
    let verifications = raw !== '' && this.signer.isWellFormed(raw) ? 1 : 0;
    for (const other of readCookieValues(cookieHeader, name, MAX_SAME_NAME_COOKIES_READ).slice(1)) {
      if (other === '') continue;
      rejected = true;
      if (!this.signer.isWellFormed(other)) continue;
      if (++verifications > MAX_SAME_NAME_COOKIES_VERIFIED) break;
      const key = this.signer.verify(other);
      if (key) return key;
    }
    if (rejected) {
      this.badCookieLog.write(
        SessionLogEvents.SessionCookieRejected,
        'A session cookie could not be unprotected (tampered, malformed or from another key ring); a new session starts.',
      );
    }
    return undefined;
  }

  /** Slides the idle timeout of a session the request did not load (fire and forget, logged). */
  slideUntouched(sessionKey: string): void {
    if (this.slidRecently(sessionKey)) return;
    this.markSlid(sessionKey);
    this.store.refresh(sessionKey, this.options.idleTimeout).catch((error: Error) => {
      this.forgetSlide(sessionKey);
      this.metrics?.failed('refresh', error);
      this.storeFailureLog.write(
        SessionLogEvents.SessionRefreshFailed,
        `Session idle timeout could not be refreshed: ${this.failureText(error)}`,
      );
    });
  }

  /** Remembers that this instance slid `sessionKey`'s idle timeout now. */
  markSlid(sessionKey: string): void {
    // The in-process store slides every untouched request at once (cheaper than remembering slides).
    if (this.options.slideSkipWindow === 0 || this.inProcessStore) return;
    if (this.slid.size >= SLID_MEMORY_LIMIT) this.slid.clear();
    this.slid.set(sessionKey, this.clock.now());
  }

  /** True when this instance slid the session within `slideSkipWindow`. */
  slidRecently(sessionKey: string): boolean {
    const at = this.slid.get(sessionKey);
    return at !== undefined && this.clock.now() - at < this.options.slideSkipWindow;
  }

  forgetSlide(sessionKey: string): void {
    this.slid.delete(sessionKey);
  }
}

/**
 * What a `hasConsent` returned, for the log: its kind only (never its value: `req.headers.cookie || false` would put
 * the request's cookies in the log).
 */
function describeConsent(consent: unknown): string {
  if (consent === null || consent === undefined) return String(consent);
  if (typeof consent === 'object' && typeof (consent as { then?: unknown }).then === 'function')
    return 'a Promise';
  return typeof consent === 'object' ? 'an object' : `a ${typeof consent}`;
}
