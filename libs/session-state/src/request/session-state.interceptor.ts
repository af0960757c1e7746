import {
  Injectable,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, mergeMap, throwError, type Observable } from 'rxjs';
import { asGraphQLError } from '../errors/graphql.errors.js';
import { findGraphQLRequestState, writesAlone } from './graphql-request.js';
import { stateOfRequest } from './request-context.js';
import type { RequestState } from './request-state.js';

/** Handlers the interceptor was applied to by a parameter decorator (once each). */
const appliedTo = new WeakSet<object>();

/** Whether a handler writes its response itself (see answersItself), per handler. */
const answeringItself = new WeakMap<object, boolean>();

/**
 * The handler takes `@Res()` or `@Next()` without `passthrough`, so Nest writes nothing after it returns (what Nest's
 * router decides with the same metadata: `__routeArguments__` keys `<paramtype>:<index>`, RESPONSE 1, NEXT 2).
 */
function answersItself(context: ExecutionContext): boolean {
  const handler = context.getHandler();
  let answers = answeringItself.get(handler);
  if (answers === undefined) {
    const type = context.getClass();
    const args = Reflect.getMetadata('__routeArguments__', type, handler.name) as object | undefined;
    const takesResponse = Object.keys(args ?? {}).some((key) => key.startsWith('1:') || key.startsWith('2:'));
    answers = takesResponse && Reflect.getMetadata('__responsePassthrough__', type, handler.name) !== true;
    answeringItself.set(handler, answers);
  }
  return answers;
}

/**
 * Commits the session when the handler returned, inside Nest's pipeline, so a failed commit under
 * `throwOnError` reaches exception filters as a 503, and rolls back TempData when the handler throws.
 * TempData itself is saved later, once, before the response's first byte (after every interceptor
 * and exception filter). `@TempData()` applies it to its handler by itself; `@Session()` does not (Nest's
 * interceptor chain costs more per request than the commit). Add it with
 * `@UseInterceptors(SessionStateInterceptor)` where your exception filters should render a failed
 * commit, and to handlers that reach TempData only through the accessor. Without it the response
 * hold still commits before the first byte leaves and answers a failed commit with a JSON 503.
 * On a GraphQL resolver it commits right after the resolver and throws the library's HTTP exceptions
 * as GraphQL errors with their code in `extensions.code` (docs/graphql.md).
 *
 * @example
 * \@Post('checkout')
 * \@UseInterceptors(SessionStateInterceptor)
 * checkout() { return this.cart.checkout(); } // the service uses SessionAccessor
 */
@Injectable()
export class SessionStateInterceptor implements NestInterceptor {
  /** Applies the interceptor to one handler once (several decorated parameters share it). */
  static applyTo(target: object, method: string | symbol | undefined): void {
    if (method === undefined) return;
    const descriptor = Object.getOwnPropertyDescriptor(target, method);
    const handler: unknown = descriptor?.value;
    if (typeof handler !== 'function' || appliedTo.has(handler)) return;
    appliedTo.add(handler);
    // Nest's public decorator, applied as it is on a method (it appends to what is there).
    UseInterceptors(SessionStateInterceptor)(target, method, descriptor!);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const type = context.getType<string>();
    if (type !== 'http') return type === 'graphql' ? this.interceptGraphQL(context, next) : next.handle();
    const state = stateOfRequest<RequestState>(context.switchToHttp().getRequest<object>());
    if (!state) return next.handle();
    return this.commitAfter(state, next, undefined, !answersItself(context));
  }

  /**
   * A GraphQL resolver (query or mutation; field resolvers with `fieldResolverEnhancers`): the same, and
   * what fails is thrown as a GraphQL error with the library's code in `extensions.code`, so a mutation
   * whose commit failed reports an error for its field instead of a result that was not saved.
   */
  private interceptGraphQL(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const state = findGraphQLRequestState(context);
    if (!state) return next.handle();
    state.graphql = true;
    return this.commitAfter(state, next, { alone: writesAlone(context, state) }).pipe(
      catchError((error: unknown) => throwError(() => asGraphQLError(error))),
    );
  }

  /** `nestAnswers`: Nest writes the response from what the handler returned (REST, no `@Res()`). */
  private commitAfter(
    state: RequestState,
    next: CallHandler,
    field?: { alone: boolean },
    nestAnswers = false,
  ): Observable<unknown> {
    return next.handle().pipe(
      // On error the exception filters still run and may use session or TempData: the response
      // hook commits once they wrote the response.
      catchError((error: unknown) => {
        state.handlerFailed(error, field);
        return throwError(() => error);
      }),
      mergeMap(async (value: unknown) => {
        await state.commitSessionInPipeline(field);
        if (nestAnswers) state.handlerReturned(value);
        return value;
      }),
    );
  }
}
