/**
 * The session's errors. Each message says what to do about it.
 */
import { ServiceUnavailableException } from '@nestjs/common';

/**
 * Session, TempData or items used where no SessionModule handled the request.
 *
 * @example
 * app.get(SessionAccessor).session; // at startup, outside a request: SessionNotConfiguredError
 * // fix: use it while a request is handled, in an app that imports SessionModule.forRoot()
 */
export class SessionNotConfiguredError extends Error {
  override readonly name = 'SessionNotConfiguredError';

  constructor(what = 'Session', usedBy?: string) {
    super(
      `${what} has not been configured for this application or request${usedBy ? ` (used by ${usedBy})` : ''}. Potential solutions: ` +
        'import SessionModule.forRoot() (or forRootAsync()) in the root module; use it only while an HTTP request ' +
        'is being handled (middleware, guards, interceptors, pipes, handlers, filters), not at startup; when an ' +
        'accessor is reached without constructor injection (moduleRef.get(), plain functions), set ' +
        'SessionModule.forRoot({ asyncContext: true }).',
    );
  }
}

/**
 * `@Session()`/`@TempData()` used in a WebSocket gateway, microservice handler or other non-HTTP context.
 *
 * @example
 * \@SubscribeMessage('chat')
 * chat(\@Session() session: Session) {} // SessionRequiresHttpError: no HTTP request here
 * // fix: keep per-connection state on the socket
 * \@SubscribeMessage('chat') chat(\@ConnectedSocket() client: Socket) { client.data.user ??= 'anonymous'; }
 */
export class SessionRequiresHttpError extends Error {
  override readonly name = 'SessionRequiresHttpError';

  constructor(what: string, contextType: string) {
    super(
      `${what} needs an HTTP request, but this handler runs in a "${contextType}" context. ` +
        'Session state belongs to HTTP requests (like ASP.NET Core, which does not support session in SignalR): ' +
        'keep per-connection state on the socket or client object instead (e.g. client.data in a gateway).',
    );
  }
}

/**
 * A synchronous session read or write before the session was loaded.
 *
 * @example
 * this.sessions.session.getString('user');          // SessionNotLoadedError
 * (await this.sessions.load()).getString('user');  // fix: load first
 */
export class SessionNotLoadedError extends Error {
  override readonly name = 'SessionNotLoadedError';

  constructor() {
    super(
      'The session has not been loaded yet. Potential solutions: take it as a handler parameter with @Session() ' +
        '(which loads it), or call `await session.load()` (or `await sessionAccessor.load()`) before reading or writing.',
    );
  }
}

/** The body of every 503 the session answers: the cause stays in the log, not in the response. */
export const SESSION_UNAVAILABLE_MESSAGE = 'Session state is temporarily unavailable.';

/**
 * The session store failed or timed out: `load()`/`commit()` throw this. It is a
 * `ServiceUnavailableException`, so where it is not caught (a guard calling `SessionAccessor.load()`)
 * the request answers 503 with the same body as `@Session()` under `throwOnError`:
 * `{ statusCode: 503, message: 'Session state is temporarily unavailable.', error: 'Service Unavailable' }`.
 * Its `message` (for logs) says what failed.
 *
 * @example
 * try {
 *   await session.commit();
 * } catch (error) {
 *   if (error instanceof SessionUnavailableError) return { saved: false }; // the store is down
 *   throw error;
 * }
 */
export class SessionUnavailableError extends ServiceUnavailableException {
  override readonly name = 'SessionUnavailableError';

  constructor(action: 'load' | 'commit' | 'lock', cause?: unknown) {
    super(SESSION_UNAVAILABLE_MESSAGE, { cause });
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    this.message =
      `The session store is unavailable, the session could not ${action === 'lock' ? 'be locked' : `${action}`}${why}. ` +
      'The request continues without session state unless the store is configured with throwOnError.';
  }
}

/**
 * The session can no longer be saved: its end-of-request commit already ran (it runs a microtask
 * after the response's first `write` or `end`), or the headers left before a new session's cookie
 * could be set.
 *
 * @example
 * res.redirect('/');
 * session.abandon(); // fine: the same turn as the redirect, part of its commit
 * await somethingElse();
 * session.setString('later', 'y'); // SessionResponseStartedError: the commit ran
 * res.flushHeaders(); // then, in a request without a session yet:
 * session.setString('late', 'x'); // SessionResponseStartedError: its cookie can't be sent
 * // fix: set values before the response is sent, or `await session.commit()` first
 */
export class SessionResponseStartedError extends Error {
  override readonly name = 'SessionResponseStartedError';

  constructor() {
    super(
      "The session can no longer be saved: this response's session commit already ran (after its first write " +
        "or end), or its headers left before a new session's cookie could be set. Set session values before " +
        'the response is sent or its headers are flushed (or call `await session.commit()` first).',
    );
  }
}
