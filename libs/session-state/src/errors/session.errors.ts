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
