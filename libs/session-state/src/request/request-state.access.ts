import type { ExecutionContext } from '@nestjs/common';
import { asGraphQLError } from '../errors/graphql.errors.js';
import {
  SessionNotConfiguredError,
  SessionRequiresHttpError,
  SessionUnavailableError,
} from '../errors/session.errors.js';
import { graphQLRequestStateOf } from './graphql-request.js';
import { requestContext, stateOfRequest } from './request-context.js';
import type { RequestState } from './request-state.js';

/** The current request's state from the async context; throws with the fix when there is none. */
export function currentRequestState(what: string): RequestState {
  const state = requestContext.getStore() as RequestState | undefined;
  if (!state) throw new SessionNotConfiguredError(what);
  return state;
}

const SUBJECTS: Record<string, string> = { '@Session()': 'Session', '@TempData()': 'TempData' };

/**
 * The request state for a decorator; throws for non-HTTP contexts and unconfigured apps. `type`: the
 * context's type, when the caller read it already.
 */
export function requestStateOf(
  context: ExecutionContext,
  what: string,
  type = context.getType<string>(),
): RequestState {
  // The request is argument 0 of an HTTP context; switchToHttp() would assign three new closures onto
  // the context object on every call, and this runs once per decorated parameter.
  const state =
    type === 'http'
      ? stateOfRequest<RequestState>(context.getArgByIndex<object>(0))
      : nonHttpRequestStateOf(context, type, what);
  if (!state) throw new SessionNotConfiguredError(SUBJECTS[what] ?? 'Request items', what);
  return state;
}

/** GraphQL resolvers reach the HTTP request through the GraphQL context; other contexts have none. */
function nonHttpRequestStateOf(
  context: ExecutionContext,
  type: string,
  what: string,
): RequestState | undefined {
  if (type !== 'graphql') throw new SessionRequiresHttpError(what, type);
  const state = graphQLRequestStateOf(context, what);
  if (state) state.graphql = true;
  return state;
}

/**
 * What a decorator throws when the session could not be loaded under `throwOnError`: the 503
 * (SessionUnavailableError), or in a GraphQL resolver the same as a GraphQL error with its code.
 */
export function loadFailure(state: RequestState, error: unknown): unknown {
  const unavailable =
    error instanceof SessionUnavailableError ? error : new SessionUnavailableError('load', error);
  return state.graphql ? asGraphQLError(unavailable) : unavailable;
}
