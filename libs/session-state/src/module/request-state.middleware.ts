import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { HttpRequest, HttpResponse } from '../http/http-exchange.js';
import { REQUEST_STATE, requestContext } from '../http/request-context.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { RequestState } from './request-state.js';

/**
 * Runs first for every request: attaches the request's state (items, lazy session, lazy TempData)
 * and, when something uses the accessors, opens the async context they read it from.
 */
@Injectable()
export class RequestStateMiddleware implements NestMiddleware {
  private readonly cookieName: string;
  private asyncContext = true;

  constructor(private readonly runtime: SessionRuntime) {
    this.cookieName = runtime.options.cookie.name;
  }

  /**
   * Whether requests run inside the AsyncLocalStorage context. Off when nothing needs it: on Node 20
   * an active AsyncLocalStorage makes every promise of every request pay for a promise hook.
   */
  useAsyncContext(enabled: boolean): void {
    this.asyncContext = enabled;
  }

  /** The middleware as a plain function (registered with Express directly, without a Nest route layer). */
  readonly handle = (req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void => {
    const state = new RequestState(this.runtime, req, res);
    (req as unknown as Record<symbol, RequestState>)[REQUEST_STATE] = state;
    if (req.headers.cookie?.includes(this.cookieName)) state.watchIdleTimeout();
    if (this.asyncContext) requestContext.run(state, next);
    else next();
  };

  use(req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void {
    this.handle(req, res, next);
  }
}
