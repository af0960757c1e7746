import type { HoldErrorReply } from '../http/response-hold.js';

/** The code of a reply whose body names none (the end-of-request commit failed: the store is down). */
const UNAVAILABLE = 'SESSION_UNAVAILABLE';
const UNAVAILABLE_MESSAGE = 'Session state is temporarily unavailable.';

/**
 * A REST error reply (`{ statusCode, message, code }`) as a GraphQL response: the same status, and a body
 * with one entry in `errors` carrying the message and the library's code in `extensions.code`. No `data`:
 * the operation's results are not sent, since what it changed in the session was not saved (a 503 means
 * the write did not and will not happen), and GraphQL clients read a body without `data` as a failed request.
 * For a batched request (`requestBody` an array) the body is that result once per operation.
 */
export function graphQLErrorReply(reply: HoldErrorReply, requestBody?: unknown): HoldErrorReply {
  const { message, code } = reply.body as { message?: unknown; code?: unknown };
  // Only the library's own replies (with a code) are passed on; anything else is the store's failure.
  const ours = typeof code === 'string' && typeof message === 'string';
  const result = {
    errors: [
      {
        message: ours ? message : UNAVAILABLE_MESSAGE,
        extensions: { code: ours ? code : UNAVAILABLE },
      },
    ],
  };
  // A batched request (an array of operations) gets an array of results, one per operation, as the
  // drivers answer it: clients match results to operations by position.
  const body = Array.isArray(requestBody) ? requestBody.map(() => result) : result;
  return { status: reply.status, body };
}
