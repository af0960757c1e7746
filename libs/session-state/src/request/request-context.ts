import { AsyncLocalStorage } from 'node:async_hooks';

/** Where a request's state hangs on the request object (fast path for decorators). */
export const REQUEST_STATE = Symbol.for('nest-session-state.request-state');

/**
 * The async context of the current request, so singleton services reach the request's state
 * without REQUEST-scoped providers.
 */
export const requestContext = new AsyncLocalStorage<object>();

/** The state the entry attached to a request (the platform's or the raw one), if any. */
export function stateOfRequest<T>(req: object | undefined): T | undefined {
  return req ? (req as Record<symbol, T | undefined>)[REQUEST_STATE] : undefined;
}
