import { SessionStateError } from './session-state.error.js';

/**
 * A change to session or TempData that can no longer be saved because this response's state was
 * already saved (it is saved a microtask after the response's first `write`, `end`, `writeHead` or
 * `flushHeaders`) or its headers left. Catch this to handle both {@link SessionResponseStartedError}
 * and {@link TempDataResponseStartedError}; the change is also logged at warn.
 *
 * @example
 * try {
 *   tempData.set('Message', 'late');
 * } catch (error) {
 *   if (!(error instanceof ResponseStartedError)) throw error; // too late for this response
 * }
 */
export abstract class ResponseStartedError extends SessionStateError {}

/**
 * The session can no longer be saved: its end-of-request commit already ran (it runs a microtask
 * after the response's first `write`, `end`, `writeHead` or `flushHeaders`), or the headers left
 * before a new session's cookie could be set (the session was first used after them).
 *
 * @example
 * res.redirect('/');
 * session.abandon(); // fine: the same turn as the redirect, part of its commit
 * await somethingElse();
 * session.setString('later', 'y'); // SessionResponseStartedError: the commit ran
 * // fix: set values before the response is sent, or `await session.commit()` first
 */
export class SessionResponseStartedError extends ResponseStartedError {
  readonly code = 'SESSION_RESPONSE_STARTED';

  constructor() {
    super(
      "The session can no longer be saved: this response's session commit already ran (after its first write " +
        "or end), or its headers left before a new session's cookie could be set. Set session values before " +
        'the response is sent or its headers are flushed (or call `await session.commit()` first).',
    );
  }
}

/**
 * TempData can no longer be saved: it is saved once per request, at the outermost point (a
 * microtask after the response's first `write`, `end`, `writeHead` or `flushHeaders`, after every
 * interceptor and exception filter), and this change (`set`, `remove`, `clear`, `keep`) came after
 * that, or after the headers left. Reads still work (they no longer consume a value).
 *
 * @example
 * res.send('done');
 * await somethingElse();
 * tempData.set('Message', 'late'); // TempDataResponseStartedError
 * // fix: set TempData before the response is written
 */
export class TempDataResponseStartedError extends ResponseStartedError {
  readonly code = 'TEMP_DATA_RESPONSE_STARTED';

  constructor() {
    super(
      "TempData can no longer be saved: this response's TempData was saved already (a microtask after its first " +
        'write or end, after every interceptor and exception filter), or its headers left. Set TempData before ' +
        'the response is written.',
    );
  }
}
