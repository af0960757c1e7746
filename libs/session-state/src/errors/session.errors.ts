import { ConflictException, PayloadTooLargeException, ServiceUnavailableException } from '@nestjs/common';
import { markSessionStateError, SessionStateError } from './session-state.error.js';

/**
 * Session, TempData or items used where no SessionModule handled the request.
 *
 * @example
 * app.get(SessionAccessor).session; // at startup, outside a request: SessionNotConfiguredError
 * // fix: use it while a request is handled, in an app that imports SessionModule.forRoot()
 */
export class SessionNotConfiguredError extends SessionStateError {
  readonly code = 'SESSION_NOT_CONFIGURED';

  constructor(what = 'Session', usedBy?: string) {
    super(
      `${what} has not been configured for this application or request${usedBy ? ` (used by ${usedBy})` : ''}. Potential solutions: ` +
        'import SessionModule.forRoot() (or forRootAsync()) in the root module; use it only while an HTTP request ' +
        'is being handled (middleware, guards, interceptors, pipes, handlers, filters), not at startup; when an ' +
        'accessor is reached without constructor injection (moduleRef.get(), plain functions), set ' +
        'SessionModule.forRoot({ asyncContext: true }); a route or middleware registered on the Express or Fastify ' +
        'instance ahead of Nest (on your own express() before new ExpressAdapter(it)) runs before the library: ' +
        'register it as a Nest middleware or route, or after NestFactory.create().',
    );
  }
}

/**
 * `@Session()` in a microservice handler or other non-HTTP context, or `@TempData()`/`@Items()`/`@Item()`
 * there or in a WebSocket gateway (a gateway reads the session through {@link GatewaySessions}), or any of
 * them in a GraphQL resolver that has no HTTP request (a subscription, or a GraphQL context without it).
 *
 * @example
 * \@MessagePattern('sum')
 * sum(\@Session() session: Session) {} // SessionRequiresHttpError: no HTTP request here
 * \@SubscribeMessage('chat')
 * chat(\@TempData() tempData: TempData) {} // SessionRequiresHttpError: TempData rides on HTTP responses
 * // fix: keep per-connection state on the socket
 * \@SubscribeMessage('chat') chat(\@ConnectedSocket() client: Socket) { client.data.user ??= 'anonymous'; }
 */
export class SessionRequiresHttpError extends SessionStateError {
  readonly code = 'SESSION_REQUIRES_HTTP';

  constructor(
    what: string,
    contextType: string,
    /** Why there is no HTTP request here and what to do, when the context type alone does not say it. */
    reason?: string,
  ) {
    super(
      `${what} needs an HTTP request, but this handler runs in a "${contextType}" context. ` +
        (reason ??
          (contextType === 'ws'
            ? `${what === '@TempData()' ? 'TempData rides on HTTP responses (it lives until the next request reads it, across a redirect)' : 'Request items live for one HTTP request'}, ` +
              "and a WebSocket message has none. In a gateway, read the handshake cookie's session with GatewaySessions " +
              '(or @Session() after gatewaySessions.connect(client, request)), and keep per-connection state on the ' +
              'socket or client object (e.g. client.data).'
            : 'Session state belongs to HTTP requests (like ASP.NET Core, which does not support session in SignalR): ' +
              'keep per-connection state on the socket or client object instead (e.g. client.data in a gateway).')),
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
export class SessionNotLoadedError extends SessionStateError {
  readonly code = 'SESSION_NOT_LOADED';

  /** `forTempData`: TempData with the session provider was used before the session was loaded. */
  constructor(forTempData = false) {
    super(
      forTempData
        ? 'TempData lives in the session (tempData.provider "session"), which has not been loaded yet. Potential ' +
            'solutions: take it as a handler parameter with @TempData() (which loads it), or use ' +
            '`await tempDataAccessor.load()` instead of `tempDataAccessor.current`.'
        : 'The session has not been loaded yet. Potential solutions: take it as a handler parameter with @Session() ' +
            '(which loads it), or call `await session.load()` (or `await sessionAccessor.load()`) before reading or writing.',
    );
  }
}

/** What a client is told when session state is unavailable (the cause stays in the logs). */
const UNAVAILABLE_REPLY = 'Session state is temporarily unavailable.';

/**
 * The session store failed or timed out: `load()`/`commit()` throw this. It is an HTTP 503 (it
 * extends Nest's ServiceUnavailableException), so left uncaught it answers
 * `{ statusCode: 503, message: 'Session state is temporarily unavailable.', error: 'Service Unavailable',
 * code: 'SESSION_UNAVAILABLE' }`, and exception filters can tell it from the app's own 503s by class or
 * `code`. `@Session()`, `@TempData()` and the end-of-request commit throw it when the store has
 * `throwOnError`; `message` (not the reply) names the cause.
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
  readonly code = 'SESSION_UNAVAILABLE';

  constructor(
    /** What failed: loading, committing or taking the lock. */
    readonly action: 'load' | 'commit' | 'lock',
    cause?: unknown,
  ) {
    super(
      {
        statusCode: 503,
        message: UNAVAILABLE_REPLY,
        error: 'Service Unavailable',
        code: 'SESSION_UNAVAILABLE',
      },
      { cause },
    );
    // Without the cause's own closing period: the sentence goes on.
    const why = cause instanceof Error ? `: ${cause.message.replace(/\.$/, '')}` : '';
    this.message =
      `The session store is unavailable, the session could not ${action === 'lock' ? 'be locked' : action}${why}. ` +
      'Requests that need the session answer 503 when the store has throwOnError (the Redis and PostgreSQL ' +
      'default); otherwise they continue without session state.';
  }
}
markSessionStateError(SessionUnavailableError);

/**
 * The opt-in session lock (`session.lock`) was not acquired within `acquireTimeout`: the cause of
 * the {@link SessionUnavailableError} (`action` `lock`) that the load throws.
 *
 * @example
 * catch (error) {
 *   if (error instanceof SessionUnavailableError && error.cause instanceof SessionLockTimeoutError) retryLater();
 * }
 */
export class SessionLockTimeoutError extends SessionStateError {
  readonly code = 'SESSION_LOCK_TIMEOUT';

  constructor(ms: number) {
    super(
      `the session lock was not acquired within session.lock.acquireTimeout=${ms} ms: another request of this ` +
        'session holds it. Raise session.lock.acquireTimeout, or keep requests that hold the lock short.',
    );
  }
}

/**
 * A stored whole-session record (CacheSessionStore) is not in the expected format. Internal: the
 * store catches it and starts the session empty, as for an expired one.
 */
export class SessionRecordFormatError extends SessionStateError {
  readonly code = 'SESSION_RECORD_FORMAT';
}

/**
 * The limits a {@link SessionLimitExceededError} names: options of `session`, or `sizeLimit`, the bound of a memory
 * store or memory cache on everything it holds (`memory.sizeLimit`, `MemoryDistributedCacheOptions.sizeLimit`),
 * which one session would pass alone.
 *
 * @example
 * if (error instanceof SessionLimitExceededError && error.limit === 'maxKeys') this.logger.warn('too many keys');
 */
export type SessionLimitName = 'maxValueBytes' | 'maxSessionBytes' | 'maxKeys' | 'sizeLimit';

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
  readonly code = 'SESSION_LIMIT_EXCEEDED';

  constructor(
    /** The option whose limit the change would exceed. */
    readonly limit: SessionLimitName,
    detail: string,
    /** The option to raise: `session.<limit>`, or for `sizeLimit` the one that sets it. */
    readonly option = `session.${limit}`,
  ) {
    const message =
      `${detail} The change was not saved. Potential solutions: remove values from the session (a change that ` +
      `shrinks it is always saved), or raise ${option}.`;
    super({ statusCode: 413, message, error: 'Payload Too Large', code: 'SESSION_LIMIT_EXCEEDED' });
    this.message = message;
  }
}
markSessionStateError(SessionLimitExceededError);

/**
 * Another request of the session called `regenerate()` (a sign-in) while this one ran: the session moved
 * to a new key, and this request's changes, made to what it loaded under the old key, were not saved.
 * They are not carried to the new key (whoever held the old key, a fixation attacker included, could
 * otherwise write into the signed-in session); nor is the old key brought back holding them. An
 * HttpException: unless the app maps it, the request answers 409 with this message. The browser holds the
 * new key's cookie once the regenerating response arrived: sending the request again saves it there.
 *
 * @example
 * \@Catch(SessionMovedError)
 * class RetryOnMove implements ExceptionFilter { ... } // answer 409 and let the client retry
 */
export class SessionMovedError extends ConflictException {
  readonly code = 'SESSION_MOVED';

  constructor() {
    const message =
      'The session moved to a new key (regenerate(), e.g. at sign-in) in another request while this one ran: ' +
      "this request's session changes were not saved. Send the request again with the new session cookie.";
    super({ statusCode: 409, message, error: 'Conflict', code: 'SESSION_MOVED' });
    this.message = message;
  }
}
markSessionStateError(SessionMovedError);

/**
 * With `session.lock`: the lock this request held expired before its commit (it could not be renewed: the
 * store did not answer, or this process stalled, for longer than `session.lock.ttl`), or a Redis failover lost it
 * (the promoted replica had not received it), so another request
 * may have read and written the session meanwhile. This request's changes, made to what it read under the
 * lock, were not saved: they would have overwritten the other request's. An HttpException: unless the app
 * maps it, the request answers 409 with this message, whatever `throwOnError` says (the store works).
 * Sending the request again reads the session anew.
 *
 * @example
 * \@Catch(SessionLockLostError)
 * class RetryOnLockLost implements ExceptionFilter { ... } // answer 409 and let the client retry
 */
export class SessionLockLostError extends ConflictException {
  readonly code = 'SESSION_LOCK_LOST';

  constructor() {
    const message =
      'The session lock (session.lock) was lost while this request ran: it expired, not renewed within ' +
      'session.lock.ttl (the store did not answer, or the process stalled), or a Redis failover lost it (the promoted ' +
      "replica had not received it), and this request's session changes were not saved " +
      'so that they cannot overwrite those of a request that took the lock meanwhile. Send the request again.';
    super({ statusCode: 409, message, error: 'Conflict', code: 'SESSION_LOCK_LOST' });
    this.message = message;
  }
}
markSessionStateError(SessionLockLostError);

/** @internal A commit the store refused, applying nothing of it (see {@link isStoreRefusal}). */
export type StoreRefusal = SessionLimitExceededError | SessionMovedError | SessionLockLostError;

/**
 * @internal The store refused a commit and applied nothing of it (a limit, a move, a lost lock): a 413 or 409, not an
 * outage, and not a write whose outcome is unknown.
 */
export function isStoreRefusal(error: unknown): error is StoreRefusal {
  return (
    error instanceof SessionLimitExceededError ||
    error instanceof SessionMovedError ||
    error instanceof SessionLockLostError
  );
}
