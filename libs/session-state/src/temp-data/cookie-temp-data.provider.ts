import { readAllCookies } from '../http/cookie-header.js';
import type { HttpExchange } from '../http/http-exchange.js';
import { formatCookieAttributes, formatDeleteCookie, formatSetCookie } from '../http/set-cookie.js';
import { TempDataTooLargeError } from '../errors/temp-data.errors.js';
import { AuthenticatedEncryptor } from '../protection/authenticated-encryptor.js';
import type { SessionRuntime } from '../session/session.runtime.js';
import type { ResolvedCookieOptions } from '../module/session-options.resolver.js';
import {
  DEFAULT_COOKIE_CHUNK_SIZE,
  DEFAULT_MAX_COOKIE_CHUNKS,
  planChunkedCookie,
  readChunkedCookie,
  staleChunkNames,
} from './chunking-cookie.js';
import {
  unchanged,
  type TempDataProvider,
  type TempDataSaveRefusal,
} from './temp-data-provider.interface.js';
import { decodeTempData, encodeTempData } from './temp-data.value-codec.js';
import { logEvent, SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** The longest attributes a TempData Set-Cookie carries besides its path and domain (a deletion's Expires too). */
const LONGEST_FLAGS =
  '; Max-Age=2147483647; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict';

/**
 * Enough chunks for `maxCookieBytes`: a chunk carries what its Set-Cookie leaves of the chunk size after the name and
 * the attributes, counted at their longest. About 3,900 characters under the defaults; a long name, path and domain
 * leave less (never under ~2,300, within the limits checked at startup), and a count sized for 3,000 per chunk then
 * refused a value within the budget (a probe: 48 KiB, a 250-character name, a 1,024-character path).
 */
function maxChunksFor(maxCookieBytes: number, cookie: ResolvedCookieOptions): number {
  const attributes =
    `; Path=${cookie.path}`.length +
    (cookie.domain === undefined ? 0 : `; Domain=${cookie.domain}`.length) +
    LONGEST_FLAGS.length;
  const room = DEFAULT_COOKIE_CHUNK_SIZE - `${cookie.name}C99=`.length - attributes;
  return Math.ceil(maxCookieBytes / room) + 1;
}

/**
 * TempData in a cookie: encoded, encrypted with AES-256-GCM under the key ring's TempData purpose,
 * base64url, and chunked like ASP.NET's ChunkingCookieManager. Loading is best-effort: a cookie
 * that is tampered, truncated, incomplete or not ours gives empty TempData and is deleted.
 */
@HiddenFromLogs()
export class CookieTempDataProvider implements TempDataProvider {
  private cookies: Record<string, string> | undefined;
  private deleteOnSave = false;
  /** The length of the valid TempData cookie this request carried (0: none). */
  private loadedLength = 0;

  constructor(
    private readonly runtime: SessionRuntime,
    private readonly exchange: HttpExchange,
  ) {}

  private get options() {
    return this.runtime.options.tempData;
  }

  /** Enough chunks for maxCookieBytes (see {@link maxChunksFor}). */
  private get maxChunks(): number {
    return maxChunksFor(this.options.maxCookieBytes, this.options.cookie);
  }

  /**
   * Chunks looked for to delete: as many as any `maxCookieBytes` writes, not only this one's, so chunks
   * written under an earlier, larger budget do not stay in the browser. Bounded, since a client's
   * invented chunk cookies each cost a deleting Set-Cookie.
   */
  private get staleChunksScanned(): number {
    return Math.max(this.maxChunks, DEFAULT_MAX_COOKIE_CHUNKS);
  }

  load(): ReadonlyMap<string, unknown> {
    const name = this.options.cookie.name;
    const header = this.exchange.cookieHeader;
    this.cookies = readAllCookies(header);
    let read = this.read(this.cookies);
    if (read === undefined) {
      // Chunks left without their header cookie (the browser dropped it, or a client sent them): deleted at save.
      const orphans = staleChunkNames(name, this.cookies, 0, { maxChunks: this.staleChunksScanned });
      if (orphans.length > 0) this.deleteOnSave = true;
      return new Map();
    }
    if ('rejected' in read) {
      // The browser may hold other cookies of these names (another path or domain, sent first: the longest path
      // first): when the first ones are unreadable, the last ones sent are read, so the app's are not lost for them.
      const last = readAllCookies(header, true);
      const other = this.sameTempDataCookies(this.cookies, last) ? undefined : this.read(last);
      if (other === undefined || 'rejected' in other) return this.reject(read.rejected);
      this.cookies = last;
      read = other;
    }
    if (read.rotated) this.deleteOnSave = true; // forces a re-write under the newest secret
    this.loadedLength = read.length;
    return read.values;
  }

  /** The TempData in `cookies`: undefined when there is none, else its values or why it was rejected. */
  private read(
    cookies: Record<string, string>,
  ):
    | { values: ReadonlyMap<string, unknown>; length: number; rotated: boolean }
    | { rejected: string }
    | undefined {
    const read = readChunkedCookie(this.options.cookie.name, cookies, { maxChunks: this.maxChunks });
    if (read === undefined) return undefined;
    if ('error' in read) return { rejected: `its chunks are unusable (${read.error})` };
    if (read.value.length > this.options.maxCookieBytes * 2) return { rejected: 'it is larger than allowed' };
    const decrypted = this.runtime.tempDataEncryptor.decrypt(read.value);
    if (!decrypted)
      return { rejected: 'it could not be decrypted (tampered, truncated or from another key ring)' };
    try {
      return {
        values: decodeTempData(decrypted.value),
        length: read.value.length,
        rotated: decrypted.rotated,
      };
    } catch {
      return { rejected: 'its content is malformed' };
    }
  }

  /** True when `first` and `last` (first- and last-wins readings of one header) agree on the TempData cookies. */
  private sameTempDataCookies(first: Record<string, string>, last: Record<string, string>): boolean {
    const prefix = this.options.cookie.name;
    for (const cookieName of Object.keys(first))
      if (cookieName.startsWith(prefix) && first[cookieName] !== last[cookieName]) return false;
    return true;
  }

  /**
   * Refuses a `set` that would make the cookie larger than `tempData.maxCookieBytes`, so a value is
   * refused where it is set rather than dropped at the end of the request.
   */
  checkSize(values: ReadonlyMap<string, unknown>, key: string): void {
    const max = this.options.maxCookieBytes;
    const bytes = AuthenticatedEncryptor.protectedLength(encodeTempData(values).length);
    if (bytes > max) throw new TempDataTooLargeError(key, bytes, max);
  }

  private reject(why: string): ReadonlyMap<string, unknown> {
    this.runtime.badCookieLog.write(
      SessionLogEvents.TempDataCookieRejected,
      `The TempData cookie was ignored and will be deleted: ${why}.`,
    );
    this.deleteOnSave = true;
    return new Map();
  }

  save(
    values: ReadonlyMap<string, unknown>,
    loaded: ReadonlyMap<string, unknown>,
  ): TempDataSaveRefusal | undefined {
    if (this.exchange.headersSent) {
      logEvent(
        this.runtime.logger,
        SessionLogEvents.TempDataSaveFailed,
        'TempData could not be saved: the response had already started.',
      );
      return;
    }
    if (!this.deleteOnSave && unchanged(values, loaded)) return;
    const cookie = this.options.cookie;
    const name = cookie.name;
    const cookies = (this.cookies ??= readAllCookies(this.exchange.cookieHeader));
    const attributes = this.runtime.cookieAttributes(this.exchange, cookie);
    const hadCookie = cookies[name] !== undefined;
    if (values.size === 0) {
      if (hadCookie) this.setCookie(formatDeleteCookie(name, attributes));
      for (const stale of staleChunkNames(name, cookies, 0, { maxChunks: this.staleChunksScanned }))
        this.setCookie(formatDeleteCookie(stale, attributes));
      return;
    }
    if (!this.runtime.mayWriteCookie(this.exchange, cookie)) {
      logEvent(
        this.runtime.logger,
        SessionLogEvents.TempDataNotStoredWithoutConsent,
        'TempData not stored: the visitor has not consented to non-essential cookies.',
      );
      return;
    }
    const protectedValue = this.runtime.tempDataEncryptor.encrypt(encodeTempData(values));
    // Only kept values, or a cookie written under a larger budget (another instance, an earlier version), can get
    // here: a set over the budget throws at set. A cookie no larger than the one this request carried still goes
    // out (the browser just sent that one), so what was read is not shown again; a larger one could not come back,
    // so none is written and the lifecycle decides what to save instead.
    const maxBytes = this.options.maxCookieBytes;
    if (protectedValue.length > maxBytes && protectedValue.length > this.loadedLength) {
      return {
        reason: `the TempData cookie would be ${protectedValue.length} bytes, over tempData.maxCookieBytes=${maxBytes}`,
      };
    }
    const planned = planChunkedCookie(name, protectedValue, {
      chunkSize: DEFAULT_COOKIE_CHUNK_SIZE,
      attributesLength: formatCookieAttributes(attributes).length,
      maxChunks: this.maxChunks,
    });
    for (const part of planned) this.setCookie(formatSetCookie(part.name, part.value, attributes));
    for (const unused of this.unusedChunkNames(cookies, planned.length - 1))
      this.setCookie(formatDeleteCookie(unused, attributes));
  }

  /**
   * The chunk cookies a write of `written` chunks (0: a single cookie) does not use, to delete: those the request
   * carried and, beside a single cookie, the first chunk. Another request of this browser that overlapped this one
   * (a tab, an XHR) may have written chunks this one did not carry, which stay if its answer arrives first. Over
   * chunks of its own this write replaces the other's first, full ones, so what stays with it is within the budget;
   * a single cookie replaces none, and the other's whole chunks with it passed the budget by up to a chunk (the next
   * request a 431, and every one after it). Without their first chunk, what stays is at most the budget less a chunk.
   */
  private unusedChunkNames(cookies: Record<string, string>, written: number): string[] {
    const name = this.options.cookie.name;
    const carried = staleChunkNames(name, cookies, written, { maxChunks: this.staleChunksScanned });
    const first = `${name}C1`;
    return written > 0 || carried.includes(first) ? carried : [first, ...carried];
  }

  /**
   * A TempData cookie goes out, and the response is marked uncacheable (as the session cookie's is): a
   * shared cache that stored it would hand one visitor's TempData, or its deletion, to others.
   */
  private setCookie(cookie: string): void {
    this.exchange.appendSetCookie(cookie);
    this.exchange.preventCaching();
  }
}
