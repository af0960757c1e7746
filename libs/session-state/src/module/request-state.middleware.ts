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

  /**
   * Runs `handler(req, res, callback)` for the request with its state attached and, when on, inside
   * the async context. Wrapped around Express's `app.handle`, so it costs no router layer.
   */
  around<C>(
    req: HttpRequest,
    res: HttpResponse,
    handler: (req: HttpRequest, res: HttpResponse, callback: C) => void,
    callback: C,
  ): void {
    const state = new RequestState(this.runtime, req, res);
    (req as unknown as Record<symbol, RequestState>)[REQUEST_STATE] = state;
    if (req.headers.cookie?.includes(this.cookieName)) state.watchIdleTimeout();
    if (this.asyncContext) requestContext.run(state, handler, req, res, callback);
    else handler(req, res, callback);
  }

  use(req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void {
    this.around(req, res, callNext, next);
  }
}

function callNext(_req: HttpRequest, _res: HttpResponse, next: (error?: unknown) => void): void {
  next();
}
