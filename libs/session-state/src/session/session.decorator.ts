import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { gatewaySessionParameter } from '../gateway/gateway-snapshots.js';
import { loadFailure, requestStateOf } from '../request/request-state.access.js';
import type { RequestState } from '../request/request-state.js';
import type { DistributedSession } from './session.js';

/** A visitor's session (see {@link DistributedSession} for the API). */
export type Session = DistributedSession;

// Loads the session for the handler. The response hook commits it before the headers leave; no
// interceptor is applied (Nest's interceptor chain costs more per request than the commit itself).
// From the in-process store the session comes back as it is, not in a promise: Nest then hands it to
// the handler without its pipe-and-Promise.all step.
const sessionParameter = createParamDecorator(
  (_data: unknown, context: ExecutionContext): DistributedSession | Promise<DistributedSession> => {
    // A gateway message: the client's read-only snapshot (GatewaySessions), not a request's session.
    const type = context.getType<string>();
    if (type === 'ws') return gatewaySessionParameter(context.getArgByIndex(0));
    const state = requestStateOf(context, '@Session()', type);
    const lifecycle = state.sessionLifecycle;
    return lifecycle.loadNow() ? lifecycle.session : loaded(state, lifecycle.session);
  },
);

async function loaded(state: RequestState, session: DistributedSession): Promise<DistributedSession> {
  try {
    await session.load();
  } catch (error) {
    if (state.runtime.store.throwOnError) throw loadFailure(state, error);
  }
  return session;
}

/**
 * Handler parameter decorator: the request's {@link Session}, loaded. When the store is down the
 * request fails with 503 if the store has `throwOnError`, otherwise the session is empty and
 * `isAvailable` is false. Changes are committed before the response headers leave; a failed commit
 * under `throwOnError` answers 503 (add `@UseInterceptors(SessionStateInterceptor)` to route it through your
 * exception filters). In a WebSocket gateway it is the client's read-only snapshot that
 * `GatewaySessions.connect()` loaded (see GatewaySessions).
 *
 * @example
 * \@Get('counter')
 * counter(\@Session() session: Session) {
 *   const count = (session.getInt32('count') ?? 0) + 1;
 *   session.setInt32('count', count);
 *   return { count };
 * }
 */
export const Session = (): ParameterDecorator => sessionParameter();
