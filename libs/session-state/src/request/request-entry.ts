import { Injectable, Logger } from '@nestjs/common';
import { logEvent, SessionLogEvents } from '../logging/session-log-events.js';
import { FirstRequestBudgetCheck } from '../temp-data/temp-data-cookie.budget.js';
import {
  HttpExchange,
  type PlatformRequest,
  type RawRequest,
  type RawResponse,
} from '../http/http-exchange.js';
import type { HttpPlatform, RequestEntry } from '../http/platforms/http-platform.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { REQUEST_STATE, requestContext } from './request-context.js';
import { RequestState } from './request-state.js';

/**
 * Runs first for every request (the platform's entry, see `http/platforms/`): attaches the request's
 * state (items, lazy session, lazy TempData) and, when something uses the accessors, runs the rest of
 * the request inside the async context they read it from.
 */
@Injectable()
export class RequestStateEntry implements RequestEntry {
  private readonly cookieName: string;
  private asyncContext = true;
  private platform: HttpPlatform | undefined;
  /** Until the first request: the TempData cookie budget against the server that serves it. */
  private budget: FirstRequestBudgetCheck | undefined;

  constructor(private readonly runtime: SessionRuntime) {
    this.cookieName = runtime.options.cookie.name;
    const { provider, maxCookieBytes } = runtime.options.tempData;
    this.budget =
      provider === 'cookie'
        ? new FirstRequestBudgetCheck(maxCookieBytes, (message) =>
            logEvent(new Logger('SessionModule'), SessionLogEvents.TempDataCookieBudget, message),
          )
        : undefined;
  }

  /** The platform the app runs on, once its entry is installed. */
  get httpPlatform(): HttpPlatform | undefined {
    return this.platform;
  }

  usePlatform(platform: HttpPlatform): void {
    this.platform = platform;
  }

  /**
   * Whether requests run inside the AsyncLocalStorage context. Off when nothing needs it: on Node 20
   * an active AsyncLocalStorage makes every promise of every request pay for a promise hook.
   */
  useAsyncContext(enabled: boolean): void {
    this.asyncContext = enabled;
  }

  enter(request: PlatformRequest, raw: RawRequest, res: RawResponse, next: (error?: unknown) => void): void {
    const state =
      (request as unknown as Record<symbol, RequestState | undefined>)[REQUEST_STATE] ??
      this.attach(request, raw, res);
    if (this.asyncContext) requestContext.run(state, next);
    else next();
  }

  attach(request: PlatformRequest, raw: RawRequest, res: RawResponse): RequestState {
    const state = new RequestState(this.runtime, new HttpExchange(request, raw, res, this.platform!));
    // Handlers get the platform's request, Nest middleware on Fastify the raw one: both lead here.
    (request as unknown as Record<symbol, RequestState>)[REQUEST_STATE] = state;
    if ((raw as unknown) !== request) (raw as unknown as Record<symbol, RequestState>)[REQUEST_STATE] = state;
    if (raw.headers.cookie?.includes(this.cookieName)) state.watchIdleTimeout();
    if (this.budget) {
      this.budget.check(raw);
      this.budget = undefined;
    }
    return state;
  }
}
