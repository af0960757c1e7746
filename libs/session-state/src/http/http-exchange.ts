export type { PlatformRequest, RawRequest, RawResponse } from './platform-request.js';
import type { PlatformRequest, RawRequest, RawResponse } from './platform-request.js';
import type { HttpPlatform } from './platforms/http-platform.js';
import { uncachedCacheControl } from './cache-control.js';
import { headWritten, setLibraryHeader, type BeforeFirstByte, type ResponseHold } from './response-hold.js';

/**
 * One request and its response, as the session, TempData and items code sees them: the platform
 * boundary. Read cookies, append or replace Set-Cookie, ask whether the head left, hold the first
 * byte until the commit, hear when the response finished. Built once per request by the platform
 * (`http/platforms/`); nothing outside `http/` touches a platform's request or response.
 */
export class HttpExchange {
  constructor(
    /** The platform's request (what `hasConsent` receives; the request state hangs on it). */
    readonly request: PlatformRequest,
    private readonly raw: RawRequest,
    private readonly res: RawResponse,
    private readonly platform: HttpPlatform,
  ) {}

  /** The request's `Cookie` header. */
  get cookieHeader(): string | undefined {
    return this.raw.headers.cookie;
  }

  /** The request's parsed body, where the platform put it (Express's `req.body`, Fastify's `request.body`). */
  get requestBody(): unknown {
    return (this.request as { body?: unknown }).body;
  }

  /** The request's headers, as Node parsed them. */
  get requestHeaders(): RawRequest['headers'] {
    return this.raw.headers;
  }

  /** The request arrived over HTTPS (as the platform says, honouring its trust-proxy setting). */
  isSecure(): boolean {
    return this.platform.isSecure(this.request, this.raw);
  }

  /** The response head left: cookies can no longer be set (Node's state, not what a held response reports). */
  get headersSent(): boolean {
    return headWritten(this.res);
  }

  /** The response was ended (its last byte was written; on Fastify also while its `end` is held). */
  get ended(): boolean {
    return this.res.writableEnded;
  }

  /** The response closed: it was sent, or its connection ended first (the client went away). */
  get closed(): boolean {
    // HTTP/2's compatibility response (Fastify with http2) has neither flag: its stream has both.
    const res = this.res as RawResponse & { stream?: { closed?: boolean; destroyed?: boolean } };
    return res.closed || res.destroyed || res.stream?.closed === true || res.stream?.destroyed === true;
  }

  /** The response reports an error: a status of 400 or above (what an exception filter answers). */
  reportsError(): boolean {
    return this.res.statusCode >= 400;
  }

  /** The response reports a server error: a status of 500 or above (what Nest answers for an unexpected exception). */
  reportsServerError(): boolean {
    return this.res.statusCode >= 500;
  }

  /** A redirect: a 3xx status with a Location header (what `@Redirect` and `redirect()` write). */
  isRedirect(): boolean {
    const status = this.res.statusCode;
    return status >= 300 && status < 400 && this.res.getHeader('location') !== undefined;
  }

  /** Adds a Set-Cookie header without dropping the ones already set. */
  appendSetCookie(cookie: string): void {
    const current = this.res.getHeader('set-cookie');
    if (current === undefined) setLibraryHeader(this.res, 'set-cookie', cookie);
    else if (Array.isArray(current)) setLibraryHeader(this.res, 'set-cookie', [...current, cookie]);
    else setLibraryHeader(this.res, 'set-cookie', [String(current), cookie]);
  }

  /** Sets the Set-Cookie header for cookie `name`, replacing one set earlier in this response. */
  replaceSetCookie(name: string, cookie: string): void {
    const current = this.res.getHeader('set-cookie');
    if (current === undefined) {
      setLibraryHeader(this.res, 'set-cookie', cookie);
      return;
    }
    const prefix = `${name}=`;
    const list = (Array.isArray(current) ? current : [String(current)]).filter((c) => !c.startsWith(prefix));
    setLibraryHeader(this.res, 'set-cookie', [...list, cookie]);
  }

  /** The response's Set-Cookie values as they are now, for {@link restoreSetCookies}. */
  setCookies(): readonly string[] {
    const current = this.res.getHeader('set-cookie');
    if (current === undefined) return [];
    return Array.isArray(current) ? [...current] : [String(current)];
  }

  /**
   * Puts back the Set-Cookie values {@link setCookies} returned, dropping what was set since, except the
   * cookie named `keep` as it is now (a session cookie the commit set before it failed further on: after
   * `regenerate()` the browser needs the new key even when the reply is an error).
   */
  restoreSetCookies(cookies: readonly string[], keep: string): void {
    const prefix = `${keep}=`;
    const kept = [
      ...cookies.filter((cookie) => !cookie.startsWith(prefix)),
      ...this.setCookies().filter((cookie) => cookie.startsWith(prefix)),
    ];
    setLibraryHeader(this.res, 'set-cookie', kept.length === 0 ? undefined : kept);
  }

  /**
   * Marks the response as not cacheable (it carries a cookie for one visitor): `no-cache, no-store` added to the
   * app's `Cache-Control`, whose other directives stay.
   */
  preventCaching(): void {
    setLibraryHeader(this.res, 'cache-control', uncachedCacheControl(this.res.getHeader('cache-control')));
    setLibraryHeader(this.res, 'pragma', 'no-cache');
  }

  /** Runs `listener` once the response was handed to the operating system. */
  onFinish(listener: () => void): void {
    this.res.once('finish', listener);
  }

  /** Runs `listener` once the response closed: sent, or the connection ended before (an aborted request). */
  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }

  /**
   * Holds the response's first byte (its first `write`, `end`, `writeHead` or `flushHeaders`, and
   * every call after it) until `beforeFirstByte` settled. See {@link ResponseHold}.
   */
  holdFirstByte(beforeFirstByte: BeforeFirstByte, onEarlyRelease: () => void): ResponseHold {
    return this.platform.holdResponse(this.raw, this.res, beforeFirstByte, onEarlyRelease).placed();
  }
}
