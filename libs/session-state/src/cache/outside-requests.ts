import { AsyncResource } from 'node:async_hooks';

/**
 * Runs calls in the async context it was created in (the module's startup), not the calling request's.
 * A connection or timer a pool creates while a request is being handled otherwise keeps that request's
 * AsyncLocalStorage context, and with it the request's whole state (items, session, request and response),
 * for as long as it lives: a pooled connection until it has been idle for pg's idle timeout (10 s).
 *
 * @example
 * const outsideRequests = new OutsideRequests(); // at startup
 * const client = await outsideRequests.run(() => pool.connect()); // in a request: the socket keeps no request
 */
export class OutsideRequests {
  private readonly scope = new AsyncResource('nest-session-state.store-connections');

  run<T>(call: () => T): T {
    return this.scope.runInAsyncScope(call);
  }
}
