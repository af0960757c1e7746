import { SessionLimitExceededError } from '../../errors/session.errors.js';
import { SESSION_ID_FIELD } from '../session.js';
import type { SessionChanges, SessionCommitLimits, SessionData } from './session-store.interface.js';

/** A session's size as the limits count it: key length plus value bytes, for every field. */
function entrySize(key: string, value: Uint8Array): number {
  return key.length + value.byteLength;
}

function userKeys(data: SessionData | undefined): number {
  if (!data) return 0;
  return data.size - (data.has(SESSION_ID_FIELD) ? 1 : 0);
}

function bytesOf(data: SessionData | undefined): number {
  let bytes = 0;
  if (data) for (const [key, value] of data) bytes += entrySize(key, value);
  return bytes;
}

/**
 * The error for a commit refused over a limit, `after` being the keys or bytes it would have left; one
 * message for every store (the memory store checks here, the Redis and PostgreSQL stores in the database).
 */
export function commitLimitExceeded(
  limit: 'maxKeys' | 'maxSessionBytes',
  after: number,
  limits: SessionCommitLimits | undefined,
): SessionLimitExceededError {
  return limit === 'maxKeys'
    ? new SessionLimitExceededError(
        'maxKeys',
        `This commit would leave the session with ${after} keys, over the limit of ${limits?.maxKeys} (session.maxKeys).`,
      )
    : new SessionLimitExceededError(
        'maxSessionBytes',
        `This commit would grow the stored session to ${after} bytes, over the limit of ${limits?.maxSessionBytes} (session.maxSessionBytes).`,
      );
}

/**
 * Throws {@link SessionLimitExceededError} when applying `changes` to what is `stored` would end
 * over a limit and larger than before; nothing is applied then. A commit that leaves the session no
 * larger always passes. Sums the stored bytes only when the commit grows them (the Redis commit
 * script makes the same decision).
 */
export function checkCommitLimits(
  stored: SessionData | undefined,
  changes: SessionChanges,
  limits: SessionCommitLimits,
): void {
  const base = changes.cleared ? undefined : stored;
  let addKeys = 0;
  let addBytes = 0;
  if (base) {
    for (const key of changes.removed) {
      const value = base.get(key);
      if (value === undefined) continue;
      if (key !== SESSION_ID_FIELD) addKeys--;
      addBytes -= entrySize(key, value);
    }
  }
  for (const [key, value] of changes.set) {
    const previous = base?.get(key);
    if (previous !== undefined) {
      addBytes += value.byteLength - previous.byteLength;
    } else {
      if (key !== SESSION_ID_FIELD) addKeys++;
      addBytes += entrySize(key, value);
    }
  }
  if (addKeys > 0 || changes.cleared) {
    const before = userKeys(stored);
    const after = changes.cleared ? addKeys : before + addKeys;
    if (after > limits.maxKeys && after > before) {
      throw commitLimitExceeded('maxKeys', after, limits);
    }
  }
  if (addBytes > 0) {
    const before = bytesOf(stored);
    const after = changes.cleared ? addBytes : before + addBytes;
    if (after > limits.maxSessionBytes && after > before) {
      throw commitLimitExceeded('maxSessionBytes', after, limits);
    }
  }
}

/**
 * `stored` with `changes` applied (a clear, then the removals, then the sets): the stored map itself, changed in
 * place, unless the commit clears it. Stores that write deltas apply a commit to what is stored now with it.
 */
export function applyChanges(stored: SessionData | undefined, changes: SessionChanges): SessionData {
  const next: SessionData = (!changes.cleared && stored) || new Map<string, Uint8Array>();
  for (const key of changes.removed) next.delete(key);
  for (const [key, value] of changes.set) next.set(key, value);
  return next;
}

/** Nothing worth keeping: no field, or only the session id. Such a session is deleted, not stored. */
export function isEmptySession(data: SessionData): boolean {
  return data.size === 0 || (data.size === 1 && data.has(SESSION_ID_FIELD));
}
