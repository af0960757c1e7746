import { PayloadTooLargeException } from '@nestjs/common';
import { markSessionStateError, SessionStateError } from './session-state.error.js';
import { keyInMessage } from './key-in-message.js';

/**
 * Thrown by `decodeTempData` for any input it cannot read completely: invalid UTF-8 or JSON, an
 * unknown version, a wrong shape, a bad tag, too deep a nesting. Providers catch it: an unreadable
 * TempData payload gives empty TempData and a log line, never a 500.
 *
 * @example
 * if (error instanceof TempDataFormatError) logger.debug(error.message);
 */
export class TempDataFormatError extends SessionStateError {
  readonly code = 'TEMP_DATA_FORMAT';

  constructor(detail: string, options?: { cause?: unknown }) {
    super(`TempData payload is malformed: ${detail}. Discard it and continue with empty TempData.`, options);
  }
}

/**
 * `tempData.set(key, value)` would make the TempData cookie larger than `tempData.maxCookieBytes`
 * (default 8 KiB, chosen so the cookie, the session cookie and the app's own cookies fit in Node's
 * default 16 KiB request header limit). Thrown at `set`, naming the key; TempData is left as it was.
 * An HTTP 413 (it extends Nest's PayloadTooLargeException), so a value that came from a form answers
 * a client error rather than a 500.
 *
 * @example
 * tempData.set('Message', `Customer ${name} added`); // TempDataTooLargeError when name is 20,000 characters
 * // fix: keep TempData small (a message, an id), or tempData: { provider: 'session' }
 */
export class TempDataTooLargeError extends PayloadTooLargeException {
  readonly code = 'TEMP_DATA_TOO_LARGE';

  constructor(key: string, cookieBytes: number, maxCookieBytes: number) {
    super({
      statusCode: 413,
      // The key and the sizes, as a session limit's reply names them; the advice stays in the logged message.
      message:
        `TempData value ${JSON.stringify(keyInMessage(key))} is too large: the TempData cookie would be ${cookieBytes} bytes, ` +
        `over tempData.maxCookieBytes=${maxCookieBytes}.`,
      error: 'Payload Too Large',
      code: 'TEMP_DATA_TOO_LARGE',
    });
    this.message =
      `TempData value "${keyInMessage(key)}" would make the TempData cookie ${cookieBytes} bytes, over ` +
      `tempData.maxCookieBytes=${maxCookieBytes}; the browser could not send it back within the server's header ` +
      "limit. Keep TempData small (a message, an id), use tempData: { provider: 'session' }, or raise " +
      "tempData.maxCookieBytes together with Node's maxHeaderSize (README, TempData).";
  }
}
markSessionStateError(TempDataTooLargeError);
