import { AsyncLocalStorage } from 'node:async_hooks';
import type { HttpRequest } from './http-exchange.js';

/** Where a request's state hangs on the request object (fast path for decorators). */
export const REQUEST_STATE = Symbol.for('nest-session-state.request-state');

/**
 * The async context of the current request, so singleton services reach the request's state
 * without REQUEST-scoped providers.
 */
export const requestContext = new AsyncLocalStorage<object>();

/** The state the middleware attached to `req`, if any. */
export function stateOfRequest<T>(req: HttpRequest | undefined): T | undefined {
  return req ? (req as unknown as Record<symbol, T | undefined>)[REQUEST_STATE] : undefined;
}
