import { maxHeaderSize, type IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/**
 * The default `tempData.maxCookieBytes`: a full TempData cookie (3 chunks) plus the request line, a
 * browser's own headers, the session cookie and the app's cookies fit in Node's default 16 KiB
 * `maxHeaderSize`. Past that limit Node answers 431 to every request the browser makes until the
 * cookie is gone, and the app never runs to delete it.
 */
export const DEFAULT_TEMP_DATA_COOKIE_BYTES = 8 * 1024;

/** What a request's head needs besides the TempData cookie (request line, browser headers, other cookies). */
export const REQUEST_HEAD_RESERVE = 8 * 1024;

/**
 * A warning when a full TempData cookie would not leave {@link REQUEST_HEAD_RESERVE} under `headerLimit` (by
 * default this process's `maxHeaderSize`, `node --max-http-header-size`); undefined when it fits.
 */
export function tempDataCookieBudgetWarning(
  maxCookieBytes: number,
  headerLimit = maxHeaderSize,
  http2 = false,
): string | undefined {
  if (maxCookieBytes + REQUEST_HEAD_RESERVE <= headerLimit) return undefined;
  if (http2) {
    return (
      `tempData.maxCookieBytes=${maxCookieBytes} leaves less than ${REQUEST_HEAD_RESERVE} bytes for the rest of a ` +
      `request's headers under the HTTP/2 header list limit of ${headerLimit} bytes: a browser holding a full ` +
      'TempData cookie would have every request refused. Lower tempData.maxCookieBytes (an HTTP/2 server takes ' +
      'about 64 KiB of headers, settings.maxHeaderListSize lowers that).'
    );
  }
  return (
    `tempData.maxCookieBytes=${maxCookieBytes} leaves less than ${REQUEST_HEAD_RESERVE} bytes for the rest of a ` +
    `request's headers under the server's maxHeaderSize=${headerLimit}: a browser holding a full TempData cookie would ` +
    'get 431 on every request. Raise the header limit with it (node --max-http-header-size=<bytes>, or ' +
    "http.createServer({ maxHeaderSize }) for the app's server), or lower tempData.maxCookieBytes."
  );
}

/**
 * What an HTTP/2 server takes of a request's headers: its `maxHeaderListSize` setting (unbounded by default), within
 * the ~64 KiB that Node's HTTP/2 implementation accepts whatever the settings (a probe: 60,000 bytes of cookies
 * served, 70,000 refused). `maxHeaderSize` is HTTP/1's and does not apply.
 */
const HTTP2_HEADER_LIST_BYTES = 64 * 1024;

/**
 * The budget checked against the server that serves the first request (an app may create its own with
 * `http.createServer({ maxHeaderSize }, ...)`, after the module started, which only a request shows). An HTTP/2
 * request is checked against HTTP/2's header list limit instead (an HTTP/2 server with `allowHTTP1` serves its
 * HTTP/1 requests under `maxHeaderSize`, checked only when the first request is one).
 */
export class FirstRequestBudgetCheck {
  constructor(
    private readonly maxCookieBytes: number,
    private readonly warn: (message: string) => void,
  ) {}

  check(request: IncomingMessage): void {
    if (request.httpVersionMajor === 2) {
      const session = (request as Partial<Pick<Http2ServerRequest, 'stream'>>).stream?.session;
      const judge = () => {
        const listed = session?.localSettings?.maxHeaderListSize ?? HTTP2_HEADER_LIST_BYTES;
        const limit = Math.min(listed, HTTP2_HEADER_LIST_BYTES);
        const warning = tempDataCookieBudgetWarning(this.maxCookieBytes, limit, true);
        if (warning) this.warn(warning);
      };
      // Until the client acknowledges them, localSettings reads the defaults, not the server's settings.
      if (session?.pendingSettingsAck) session.once('localSettings', judge);
      else judge();
      return;
    }
    const server = (request.socket as { server?: { maxHeaderSize?: number } } | undefined)?.server;
    // 0 (or no option) is Node's default.
    const warning = tempDataCookieBudgetWarning(this.maxCookieBytes, server?.maxHeaderSize || maxHeaderSize);
    if (warning) this.warn(warning);
  }
}
