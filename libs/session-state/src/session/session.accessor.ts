import { Injectable } from '@nestjs/common';
import { currentRequestState } from '../request/request-state.access.js';
import type { DistributedSession } from './session.js';

/**
 * The current request's session for singleton services, guards and interceptors (through
 * AsyncLocalStorage: no REQUEST scope).
 *
 * @example
 * \@Injectable()
 * export class AuthGuard implements CanActivate {
 *   constructor(private readonly sessions: SessionAccessor) {}
 *   async canActivate() {
 *     const session = await this.sessions.load();
 *     return session.getString('user') !== undefined;
 *   }
 * }
 */
@Injectable()
export class SessionAccessor {
  /** The session, possibly not loaded yet. Throws when no request is being handled. */
  get session(): DistributedSession {
    return currentRequestState('Session').sessionLifecycle.session;
  }

  /**
   * The session, loaded. Throws {@link SessionUnavailableError} when the store is down: uncaught (in a
   * guard, say) it answers 503 with the same body as `@Session()` does under `throwOnError`.
   */
  async load(): Promise<DistributedSession> {
    const session = this.session;
    await session.load();
    return session;
  }
}
