import { ServiceUnavailableException } from '@nestjs/common';
import { markSessionStateError, SessionStateError } from '../errors/session-state.error.js';

/**
 * `UserSessions` was used over a session store that cannot index sessions by user (a custom
 * `SessionStore`, or `CacheSessionStore` over an app's own cache).
 *
 * @example
 * SessionModule.forRoot({ cache: myCache }); // then userSessions.bind(...) throws UserSessionsUnsupportedError
 * // fix: the memory store (default), the Redis store (option redis) or the PostgreSQL store (option postgres),
 * // or a store implementing UserSessionIndexSource
 */
export class UserSessionsUnsupportedError extends SessionStateError {
  readonly code = 'USER_SESSIONS_UNSUPPORTED';

  constructor(storeName: string) {
    super(
      `UserSessions needs a session store that can index sessions by user, and ${storeName} cannot. ` +
        'Potential solutions: use the memory store (the default), the Redis store (SessionModule option redis) ' +
        'or the PostgreSQL store (option postgres); ' +
        'or make your store implement UserSessionIndexSource (a userSessionIndex() method returning a UserSessionIndex).',
    );
  }
}

/**
 * `bind()` was called on a session that is not stored, so there is nothing to list or revoke: the
 * store was unreachable, or the visitor has not consented to the (non-essential) session cookie.
 *
 * @example
 * await userSessions.bind(session, 'alice'); // UserSessionNotStoredError without cookie consent
 */
export class UserSessionNotStoredError extends SessionStateError {
  readonly code = 'USER_SESSION_NOT_STORED';

  constructor() {
    super(
      'UserSessions.bind() needs a stored session, and this one was not stored. Potential solutions: store a value ' +
        '(the signed-in user, say) in the session before binding it; if the visitor has not consented to ' +
        'non-essential cookies, mark the session cookie essential (session.cookie.isEssential) or ask for consent first.',
    );
  }
}

/** What a client is told when the user index is unavailable (the cause stays in the logs). */
const UNAVAILABLE_REPLY = 'User sessions are temporarily unavailable.';

/**
 * The store failed or timed out while `UserSessions` read or changed a user's index (an HTTP 503, like
 * `SessionUnavailableError`). The store's own retries and timeouts bound the wait; `message` names
 * the cause. Revocations are safe to retry: revoking a session already gone does nothing.
 *
 * @example
 * try {
 *   await userSessions.revokeAll('alice');
 * } catch (error) {
 *   if (error instanceof UserSessionsUnavailableError) return { retryLater: true };
 *   throw error;
 * }
 */
export class UserSessionsUnavailableError extends ServiceUnavailableException {
  readonly code = 'USER_SESSIONS_UNAVAILABLE';

  constructor(
    /** What failed: `bind`, `list`, `revoke` or `unbind`. */
    readonly action: 'bind' | 'list' | 'revoke' | 'unbind',
    cause?: unknown,
  ) {
    super(
      {
        statusCode: 503,
        message: UNAVAILABLE_REPLY,
        error: 'Service Unavailable',
        code: 'USER_SESSIONS_UNAVAILABLE',
      },
      { cause },
    );
    // Without the cause's own closing period: the sentence goes on.
    const why = cause instanceof Error ? `: ${cause.message.replace(/\.$/, '')}` : '';
    this.message =
      `The session store is unavailable, the user's sessions could not be ${action === 'list' ? 'listed' : `${action === 'bind' ? 'bound' : action === 'revoke' ? 'revoked' : 'unbound'}`}${why}. ` +
      'Nothing was half-done that a retry would not finish: retry once the store answers.';
  }
}
markSessionStateError(UserSessionsUnavailableError);
