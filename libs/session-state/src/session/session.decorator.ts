import { createParamDecorator, ServiceUnavailableException, type ExecutionContext } from '@nestjs/common';
import { requestStateOf } from '../module/request-state.access.js';
import { SessionStateInterceptor } from '../module/session.interceptor.js';
import type { DistributedSession } from './session.js';

/** A visitor's session (see {@link DistributedSession} for the API). */
export type Session = DistributedSession;

// Loads the session for the handler; the exported decorator also applies the commit interceptor.
const sessionParameter = createParamDecorator(
  async (_data: unknown, context: ExecutionContext): Promise<DistributedSession> => {
    const state = requestStateOf(context, '@Session()');
    const { session } = state.sessionLifecycle;
    try {
      await session.load();
    } catch (error) {
      if (state.runtime.store.throwOnError) {
        throw new ServiceUnavailableException('Session state is temporarily unavailable.', { cause: error });
      }
    }
    return session;
  },
);

/**
 * Handler parameter decorator: the request's {@link Session}, loaded. When the store is down the
 * request fails with 503 if the store has `throwOnError`, otherwise the session is empty and
 * `isAvailable` is false.
 *
 * @example
 * \@Get('counter')
 * counter(\@Session() session: Session) {
 *   const count = (session.getInt32('count') ?? 0) + 1;
 *   session.setInt32('count', count);
 *   return { count };
 * }
 */
export const Session = (): ParameterDecorator => (target, method, index) => {
  sessionParameter()(target, method, index);
  SessionStateInterceptor.applyTo(target, method);
};
