import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { HttpRequest, HttpResponse } from '../http/http-exchange.js';
import { REQUEST_STATE, requestContext } from '../http/request-context.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { RequestState } from './request-state.js';

/**
 * Runs first for every route: attaches the request's state (items, lazy session, lazy TempData)
 * and opens the async context that singleton services read it from.
 */
@Injectable()
export class RequestStateMiddleware implements NestMiddleware {
  private readonly cookieName: string;

  constructor(private readonly runtime: SessionRuntime) {
    this.cookieName = runtime.options.cookie.name;
  }

  use(req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void {
    const state = new RequestState(this.runtime, req, res);
    (req as unknown as Record<symbol, RequestState>)[REQUEST_STATE] = state;
    if (req.headers.cookie?.includes(this.cookieName)) res.once('finish', () => state.afterResponse());
    requestContext.run(state, next);
  }
}
