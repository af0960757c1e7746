import {
  SessionLimitExceededError,
  SessionLockLostError,
  SessionLockTimeoutError,
  SessionMovedError,
} from '../errors/session.errors.js';

const ERRNO = /^E[A-Z0-9_]+$/;
/**
 * The library's own timeout messages (Redis, PostgreSQL, `ioTimeout`), and PostgreSQL's when its `statement_timeout`
 * (set to the operation timeout) cancels a statement first (SQLSTATE 57014, which a cancel by hand shares).
 */
const TIMED_OUT = /\btimed out\b|did not answer within|due to statement timeout/;

/**
 * A low-cardinality reason for a store failure, for the `error.type` attribute: `lock_timeout`,
 * `limit_exceeded`, `session_moved` (a late commit after `regenerate()`), `lock_lost`
 * (a commit whose `session.lock` expired), a Node.js network error code (`ECONNREFUSED`, `ECONNRESET`, ...), `timeout`, or
 * `unavailable`, looked up through the error and its causes (the session wraps the store's error).
 * Never the message itself (it may name hosts).
 */
export function sessionFailureType(error: unknown): string {
  const chain: Error[] = [];
  for (let current = error; current instanceof Error && chain.length < 5; current = current.cause) {
    chain.push(current);
  }
  if (chain.some((e) => e instanceof SessionLockTimeoutError)) return 'lock_timeout';
  if (chain.some((e) => e instanceof SessionLimitExceededError)) return 'limit_exceeded';
  if (chain.some((e) => e instanceof SessionMovedError)) return 'session_moved';
  if (chain.some((e) => e instanceof SessionLockLostError)) return 'lock_lost';
  for (const e of chain) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && ERRNO.test(code)) return code;
  }
  return chain.some((e) => TIMED_OUT.test(e.message)) ? 'timeout' : 'unavailable';
}
