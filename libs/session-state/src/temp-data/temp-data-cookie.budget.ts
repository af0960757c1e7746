import { maxHeaderSize, type IncomingMessage } from 'node:http';

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
): string | undefined {
  if (maxCookieBytes + REQUEST_HEAD_RESERVE <= headerLimit) return undefined;
  return (
    `tempData.maxCookieBytes=${maxCookieBytes} leaves less than ${REQUEST_HEAD_RESERVE} bytes for the rest of a ` +
    `request's headers under the server's maxHeaderSize=${headerLimit}: a browser holding a full TempData cookie would ` +
    'get 431 on every request. Raise the header limit with it (node --max-http-header-size=<bytes>, or ' +
    "http.createServer({ maxHeaderSize }) for the app's server), or lower tempData.maxCookieBytes."
  );
}

/**
 * The budget checked against the server that serves the first request (an app may create its own with
 * `http.createServer({ maxHeaderSize }, ...)`, after the module started, which only a request shows). An
 * HTTP/2 server has no `maxHeaderSize` (its limit is `maxHeaderListSize`): the process's is used.
 */
export class FirstRequestBudgetCheck {
  constructor(
    private readonly maxCookieBytes: number,
    private readonly warn: (message: string) => void,
  ) {}

  check(request: IncomingMessage): void {
    const server = (request.socket as { server?: { maxHeaderSize?: number } } | undefined)?.server;
    // 0 (or no option) is Node's default.
    const warning = tempDataCookieBudgetWarning(this.maxCookieBytes, server?.maxHeaderSize || maxHeaderSize);
    if (warning) this.warn(warning);
  }
}
