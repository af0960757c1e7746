import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { catchError, mergeMap, throwError, type Observable } from 'rxjs';
import type { HttpRequest } from '../http/http-exchange.js';
import { stateOfRequest } from '../http/request-context.js';
import type { RequestState } from './request-state.js';

/**
 * Commits session and TempData when the handler returned, inside Nest's pipeline, so a failed
 * commit under `throwOnError` reaches exception filters as a 503. Handlers that write the response
 * themselves (`@Res()`) and failed handlers (after the exception filters) are covered by the
 * response hook instead.
 */
@Injectable()
export class SessionInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const state = stateOfRequest<RequestState>(context.switchToHttp().getRequest<HttpRequest>());
    if (!state) return next.handle();
    return next.handle().pipe(
      // On error the exception filters still run and may use session or TempData: the response
      // hook commits once they wrote the response.
      catchError((error: unknown) => {
        state.markFailed();
        return throwError(() => error);
      }),
      mergeMap(async (value: unknown) => {
        await state.finalize();
        return value;
      }),
    );
  }
}
