import { SESSION_ID_FIELD, SESSION_USER_FIELD } from '../session/session.js';
import type { SessionChanges } from '../session/stores/session-store.interface.js';

export { SESSION_USER_FIELD };

const decoder = new TextDecoder();

/**
 * The id of the bound session a commit's request loaded, when the commit must apply only to that
 * session (undefined: apply as usual). A request that loaded a session bound to a user may still be
 * running when the session is revoked; its commit must not bring the session back under the same
 * key. So a commit of a bound session applies only while the stored session still carries the id the
 * request loaded: a delta, and a `clear()` of it (`clearedBoundSessionId`). So are the commits that bind
 * (set the user field) or unbind (remove it) a session the request loaded from the store or stored itself
 * (`ofStoredSession`): a revoked session must not come back through a `bind()` (a device renamed, an account
 * switched) or an `unbind()` that was running when it was revoked. Not guarded: commits that create the id
 * (the stored session had none, so it was never listed), a bind of a session nothing stored yet, and the
 * rewrite under a new key after `regenerate()` (nothing is stored under that key yet), which the sign-in's
 * bind is. After a `clear()`, a bind is guarded by the id the cleared session had if it was bound.
 */
export function guardedSessionId(changes: SessionChanges): string | undefined {
  // A bind or unbind guards only what the request loaded from the store or stored itself: not a new session,
  // not the rewrite under a new key after regenerate() (nothing is stored under it yet).
  const binding = changes.set.has(SESSION_USER_FIELD) || changes.removed.has(SESSION_USER_FIELD);
  if (binding && changes.ofStoredSession !== true) return undefined;
  if (changes.cleared) return changes.clearedBoundSessionId;
  if (changes.set.has(SESSION_ID_FIELD)) return undefined;
  // Most commits are of sessions not bound to anyone: one Map lookup, no copy of the session.
  if (!binding && valueOf(changes, SESSION_USER_FIELD) === undefined) return undefined;
  const id = valueOf(changes, SESSION_ID_FIELD);
  return id === undefined ? undefined : decoder.decode(id);
}

/** A field's value in the session being committed (with what this commit changes). */
function valueOf(changes: SessionChanges, field: string): Uint8Array | undefined {
  return changes.valueOfField ? changes.valueOfField(field) : changes.snapshot().get(field);
}

/** The id stored in a session's values, if any. */
export function storedSessionId(data: ReadonlyMap<string, Uint8Array> | undefined): string | undefined {
  const id = data?.get(SESSION_ID_FIELD);
  return id === undefined ? undefined : decoder.decode(id);
}
