import { SessionLimitExceededError, SessionLockTimeoutError } from '../errors/session.errors.js';

const ERRNO = /^E[A-Z0-9_]+$/;
const TIMEOUT = /timed out|did not answer within|timeout/i;

/**
 * A low-cardinality reason for a store failure, for the `error.type` attribute: `timeout`,
 * `lock_timeout`, `limit_exceeded`, a Node.js network error code (`ECONNREFUSED`, `ECONNRESET`, ...)
 * found on the error or its causes, or `unavailable`. Never the message itself (it may name hosts).
 */
export function sessionFailureType(error: unknown): string {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    if (current instanceof SessionLockTimeoutError) return 'lock_timeout';
    if (current instanceof SessionLimitExceededError) return 'limit_exceeded';
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && ERRNO.test(code)) return code;
    if (TIMEOUT.test(current.message)) return 'timeout';
    current = current.cause;
  }
  return 'unavailable';
}
