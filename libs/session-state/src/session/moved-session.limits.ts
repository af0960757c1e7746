import { SESSION_ID_FIELD } from './session.js';
import type { SessionCommitLimits } from './stores/session-store.interface.js';

/**
 * The limits for `regenerate()`'s write of the whole session under its new key. Checked against an empty key, a
 * session already over a limit (a lowered limit, values another request's move carried over) would read as grown
 * from nothing and answer 413, so it could never sign in. What is written is what the request loaded with the
 * changes `set` let through, and `set` lets no change grow a session over a limit: a limit the session is over
 * already rises to its size, in UTF-8 bytes (as Redis and PostgreSQL count names, never fewer than in memory).
 */
export function limitsForMove(
  limits: SessionCommitLimits,
  moved: ReadonlyMap<string, Uint8Array>,
): SessionCommitLimits {
  let keys = 0;
  let bytes = 0;
  for (const [key, value] of moved) {
    if (key !== SESSION_ID_FIELD) keys++;
    bytes += Buffer.byteLength(key) + value.byteLength;
  }
  return {
    maxKeys: Math.max(limits.maxKeys, keys),
    maxSessionBytes: Math.max(limits.maxSessionBytes, bytes),
    ioTimeout: limits.ioTimeout,
  };
}
