import { HttpException, IntrinsicException } from '@nestjs/common';
import { markSessionStateError, SessionStateError } from './session-state.error.js';

/** A library HTTP exception with its stable code (SessionUnavailableError, SessionLimitExceededError, ...). */
type CodedHttpException = HttpException & { readonly code: string };

/**
 * One of this library's HTTP exceptions as a GraphQL resolver reports it: the `errors` entry carries the
 * library's stable code in `extensions.code` (graphql-js copies an error's `extensions` into the response)
 * and the message REST clients get in the 503/413 body; the cause stays in the logs and in `cause`. Not
 * an HttpException itself: Apollo's Nest driver would replace an HTTP exception's code with
 * INTERNAL_SERVER_ERROR, and Mercurius would drop it. Internal: clients branch on `extensions.code`,
 * servers on `cause` (e.g. `instanceof SessionUnavailableError`). An IntrinsicException, as Nest's HTTP
 * exceptions are: Nest's exception handler does not log it (a store outage would otherwise write one error
 * with a stack per resolver; the library logs the outage itself, once); `instanceof SessionStateError` holds.
 */
export class SessionGraphQLError extends IntrinsicException {
  readonly code: string;
  /** What graphql-js puts in the response's `errors[i].extensions`. */
  readonly extensions: { readonly code: string };

  constructor(cause: CodedHttpException) {
    super(replyMessageOf(cause), { cause });
    this.name = 'SessionGraphQLError';
    this.code = cause.code;
    this.extensions = { code: cause.code };
  }
}

markSessionStateError(SessionGraphQLError);

/** `error` as a GraphQL resolver should throw it: the library's HTTP exceptions become {@link SessionGraphQLError}. */
export function asGraphQLError(error: unknown): unknown {
  if (error instanceof HttpException && error instanceof SessionStateError) {
    const coded = error as Partial<CodedHttpException> & HttpException;
    if (typeof coded.code === 'string') return new SessionGraphQLError(coded as CodedHttpException);
  }
  return error;
}

/** The message of an exception's reply body (what REST clients read), not its detailed `message`. */
function replyMessageOf(error: HttpException): string {
  const reply = error.getResponse();
  if (typeof reply === 'string') return reply;
  const message = (reply as { message?: unknown }).message;
  return typeof message === 'string' ? message : error.message;
}
