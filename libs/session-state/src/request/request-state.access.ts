import type { ExecutionContext } from '@nestjs/common';
import { SessionNotConfiguredError, SessionRequiresHttpError } from '../errors/session.errors.js';
import { requestContext, stateOfRequest } from './request-context.js';
import type { RequestState } from './request-state.js';

/** The current request's state from the async context; throws with the fix when there is none. */
export function currentRequestState(what: string): RequestState {
  const state = requestContext.getStore() as RequestState | undefined;
  if (!state) throw new SessionNotConfiguredError(what);
  return state;
}

const SUBJECTS: Record<string, string> = { '@Session()': 'Session', '@TempData()': 'TempData' };

/** The request state for a decorator; throws for non-HTTP contexts and unconfigured apps. */
export function requestStateOf(context: ExecutionContext, what: string): RequestState {
  const type = context.getType<string>();
  if (type !== 'http') throw new SessionRequiresHttpError(what, type);
  // The request is argument 0 of an HTTP context; switchToHttp() would assign three new closures onto
  // the context object on every call, and this runs once per decorated parameter.
  const state = stateOfRequest<RequestState>(context.getArgByIndex<object>(0));
  if (!state) throw new SessionNotConfiguredError(SUBJECTS[what] ?? 'Request items', what);
  return state;
}
