/**
 * What an index keeps about one session bound to a user. `sessionKey` is the store key (the secret
 * the cookie carries): it never leaves the library; apps see `sessionId`.
 *
 * @example
 * const record: UserSessionRecord = { sessionId, sessionKey, createdAt: Date.now(), metadata: { userAgent } };
 */
export interface UserSessionRecord {
  /** The public session id (`session.id`). */
  readonly sessionId: string;
  /** The store key of the session's data. Internal: never returned to apps. */
  readonly sessionKey: string;
  /** When the session was bound to the user (epoch ms). */
  readonly createdAt: number;
  /** What the app chose to record at binding (user agent, address, device name...). */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * A record whose session is still alive, with what the store knows of its activity.
 *
 * @example
 * const live = await index.list('alice'); // LiveUserSession[], oldest first
 * const lastSeenAt = live[0].expiresAt - idleTimeoutMs;
 */
export interface LiveUserSession extends UserSessionRecord {
  /** When the session's idle timeout ends (epoch ms), as the store reports it now. */
  readonly expiresAt: number;
}

/**
 * The per-user index of bound sessions, one per store kind. The module takes it from the session store
 * ({@link UserSessionIndexSource}): the memory, Redis and PostgreSQL stores have one; a store for another
 * database implements this interface and `userSessionIndex()` (as the PostgreSQL store does with a
 * `<table>_users(user_id, session_id, session_key, created_at, metadata)` table joined with the sessions table
 * for expiry).
 *
 * Contract every implementation keeps:
 * - An entry whose session is gone (expired, abandoned, revoked, or its key reused by another session)
 *   is never returned, and is dropped when met (on `add` and `list`): the index trims itself.
 * - `revoke` deletes each session's data, but only while the key still holds that session (its stored
 *   id matches), then drops its entry; after it, a commit by a request that had loaded the session
 *   applies nothing (the store's guarded commit, see `guardedSessionId`).
 * - Every call is bounded in time as the store's session calls are, and rejects on a store failure.
 *
 * @example
 * class PostgresSessionStore implements SessionStore, UserSessionIndexSource {
 *   userSessionIndex(): UserSessionIndex { return (this.users ??= new PostgresUserSessionIndex(this.pool)); }
 * }
 */
export interface UserSessionIndex {
  /**
   * Adds the session to the user's index (replacing an entry with the same `sessionId`) and returns the
   * user's live sessions, oldest first (`createdAt`, then id). `ioTimeoutMs` (`session.ioTimeout`, when set): the
   * caller stops waiting that long after the call; an add that reaches the store after that (or after the store's
   * own bound) should apply nothing, as a commit past its deadline, so a sign-in answered 503 lists no session.
   * `replacesKey`: the bound session was moved to a new key (`regenerate()`) since its entry was written under
   * `replacesKey`; add only while the user's entry for this id records that key or the new one, and otherwise
   * nothing (a revocation that ran after the move found the old key empty and dropped the entry: re-adding it would
   * keep the session signed in past it).
   */
  add(
    userId: string,
    record: Omit<UserSessionRecord, 'createdAt'>,
    idleTimeoutMs: number,
    ioTimeoutMs?: number,
    replacesKey?: string,
  ): Promise<LiveUserSession[]>;
  /** The user's live sessions, oldest first; entries whose session is gone are dropped. */
  list(userId: string): Promise<LiveUserSession[]>;
  /** Deletes each session's data (only while the key holds that session), then its index entry. */
  revoke(userId: string, sessions: readonly UserSessionRecord[]): Promise<void>;
  /**
   * Drops the entry only: the session's own request unbinds it (logout) and deals with its data. With
   * `sessionKey`, only while the entry records that key: the same id bound again meanwhile under a new key
   * (a sign-in in another tab: `regenerate()` keeps the id) stays listed. Entries an implementation drops as
   * dead (on `add` and `list`) follow the same rule: a probe of the old key must not drop the new entry.
   */
  remove(userId: string, sessionId: string, sessionKey?: string): Promise<void>;
}

/**
 * A session store that can index sessions by user. {@link MemorySessionStore}, the Redis store and the
 * PostgreSQL store implement it; `UserSessions` refuses to work over a store that does not.
 *
 * @example
 * class MyStore implements SessionStore, UserSessionIndexSource {
 *   userSessionIndex() { return (this.index ??= new MyUserSessionIndex(this.db)); }
 * }
 */
export interface UserSessionIndexSource {
  /** The store's index (the same object on every call). */
  userSessionIndex(): UserSessionIndex;
}

/**
 * True when `store` can index sessions by user (it implements {@link UserSessionIndexSource}).
 *
 * @example
 * if (!isUserSessionIndexSource(store)) throw new Error('this store cannot list a user’s sessions');
 */
export function isUserSessionIndexSource(store: unknown): store is UserSessionIndexSource {
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof (store as Partial<UserSessionIndexSource>).userSessionIndex === 'function'
  );
}

/** Oldest first: by `createdAt`, then by id (so every instance picks the same oldest). */
export function oldestFirst(a: UserSessionRecord, b: UserSessionRecord): number {
  return a.createdAt - b.createdAt || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}
