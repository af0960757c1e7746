import { PayloadTooLargeException } from '@nestjs/common';

/**
 * The session's errors. Each message says what to do about it.
 */

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

/**
 * The session store failed or timed out: `load()`/`commit()` throw this.
 *
 * @example
 * try {
 *   await session.commit();
 * } catch (error) {
 *   if (error instanceof SessionUnavailableError) return { saved: false }; // the store is down
 *   throw error;
 * }
 */
export class SessionUnavailableError extends Error {
  override readonly name = 'SessionUnavailableError';

  constructor(action: 'load' | 'commit' | 'lock', cause?: unknown) {
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    super(
      `The session store is unavailable, the session could not ${action === 'lock' ? 'be locked' : `${action}`}${why}. ` +
        'The request continues without session state unless the store is configured with throwOnError.',
      { cause },
    );
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

/**
 * The session limits a {@link SessionLimitExceededError} names (options of `session`).
 *
 * @example
 * if (error instanceof SessionLimitExceededError && error.limit === 'maxKeys') this.logger.warn('too many keys');
 */
export type SessionLimitName = 'maxValueBytes' | 'maxSessionBytes' | 'maxKeys';

/**
 * A change would take the session over one of its limits (`session.maxValueBytes`,
 * `session.maxSessionBytes`, `session.maxKeys`). Thrown by `set` when the request's own view of the
 * session is over, and by the commit when the stored session would be (the store checks what is
 * stored, so concurrent requests cannot add up past a limit). Nothing of the refused change is saved.
 * A change that leaves the session no larger than it was is always accepted, even over a limit.
 * An HttpException: unless the app maps it, the request answers 413 with this message.
 *
 * @example
 * try {
 *   session.set('cart', cart);
 * } catch (error) {
 *   if (error instanceof SessionLimitExceededError) return { saved: false, limit: error.limit };
 *   throw error;
 * }
 */
export class SessionLimitExceededError extends PayloadTooLargeException {
  override readonly name = 'SessionLimitExceededError';

  constructor(
    /** The option whose limit the change would exceed. */
    readonly limit: SessionLimitName,
    detail: string,
  ) {
    super(
      `${detail} The change was not saved. Potential solutions: remove values from the session (a change that ` +
        `shrinks it is always saved), or raise session.${limit}.`,
    );
  }
}
