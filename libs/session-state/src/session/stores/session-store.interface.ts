import { Inject } from '@nestjs/common';

/**
 * A session's stored values by key (reserved fields start with `\u0000`).
 *
 * @example
 * async load(key: string): Promise<SessionData | undefined> {
 *   const rows = await this.db.fields(key);
 *   return rows ? new Map(rows.map((r) => [r.field, r.bytes])) : undefined;
 * }
 */
export type SessionData = Map<string, Uint8Array>;

/**
 * What one request changed in a session: stores that can, write only this.
 *
 * @example
 * async commit(key: string, changes: SessionChanges, idleTimeoutMs: number) {
 *   if (changes.cleared) await this.db.deleteAll(key);
 *   for (const field of changes.removed) await this.db.delete(key, field);
 *   for (const [field, bytes] of changes.set) await this.db.put(key, field, bytes, idleTimeoutMs);
 * }
 */
export interface SessionChanges {
  /** All previous values are dropped before `set` applies. */
  readonly cleared: boolean;
  /**
   * With `cleared`, when the cleared session was bound to a user (`UserSessions`): its id. The clear
   * applies only while the stored session still carries this id, so it does not bring back a session
   * revoked meanwhile (stores that guard bound sessions; see the commit's `guardedSessionId`).
   */
  readonly clearedBoundSessionId?: string;
  readonly set: ReadonlyMap<string, Uint8Array>;
  readonly removed: ReadonlySet<string>;
  /**
   * The request loaded this session from the store (or stored it itself): when the key holds no session
   * any more and carries an {@link EndedSessionMark} (another request moved it with `regenerate()` or
   * ended it with `abandon()` meanwhile), the commit applies nothing instead of bringing the key back with
   * this delta: it throws `SessionMovedError` after a move, and resolves after an abandon (the session is
   * gone, as after a revocation). Without a mark (the store deleted the session because a delta emptied
   * it, or it expired) the delta applies as usual. Stores that keep no marks ignore it.
   */
  readonly ofStoredSession?: boolean;
  /**
   * With `session.lock`: the token of the lock this request took on the session (see
   * {@link SessionStore.tryLock}). The commit applies only while that token still holds the lock, checked in
   * the same atomic step as the write; otherwise it throws `SessionLockLostError` and applies nothing (the
   * lock expired and another request may have read and written the session since). Given only to stores
   * that renew locks ({@link SessionStore.renewLock}): such a store checks it against the locks its own
   * `tryLock` takes (a subclass of a built-in store that replaces `tryLock` is not checked by it). A store with
   * locks but no `renewLock` (a lease neither renewed nor fenced) gets none.
   */
  readonly lockToken?: string;
  /**
   * The request found no session under this key and starts one here: when the key still holds no session and
   * carries a moved mark ({@link EndedSessionMark}) left at most this many ms ago (`regenerate()` moved the session
   * while this request ran, or just before: a cart item added in one tab while another signs in), the commit throws
   * `SessionMovedError` and applies nothing, checked in the same atomic step as the write. How long ago is what has
   * run of the mark's lifetime, `idleTimeoutMs` minus what is left of it; a mark kept longer than `idleTimeoutMs`
   * (left by an instance with a longer idle timeout) is not judged. Given only to stores that declare
   * {@link SessionStore.refusesJustMoved}; the module reads {@link SessionStore.endingOf} before the commit for
   * the others.
   */
  readonly refuseIfMovedWithinMs?: number;
  /** The complete values after the changes, for stores that write whole records. */
  snapshot(): SessionData;
  /**
   * One value of {@link snapshot} without copying the session (the guarded commit of bound sessions
   * reads two fields per commit). Optional: without it, `snapshot()` answers.
   */
  valueOfField?(field: string): Uint8Array | undefined;
}

/**
 * How a session left its key: `regenerate()` moved it, `abandon()` ended it.
 *
 * @example
 * async endingOf(key: string): Promise<{ ending: SessionEnding; remainingMs: number } | undefined> {
 *   const mark = await this.db.endedMark(key); // left by take() and remove(), kept for EndedSessionMark.keepMs
 *   return mark && { ending: mark.moved ? 'moved' : 'abandoned', remainingMs: mark.until - Date.now() };
 * }
 */
export type SessionEnding = 'moved' | 'abandoned';

/**
 * Kept under the key of a session that `regenerate()` moved (`take`) or `abandon()` ended (`remove`), for
 * `keepMs` (the idle timeout: a request that loaded the session commits within it, or would find it
 * expired anyway): a late commit of a request that loaded the session ({@link SessionChanges.ofStoredSession})
 * finds it and applies nothing. A store may keep none (custom stores that ignore it).
 *
 * @example
 * async take(key: string, mark?: EndedSessionMark) {
 *   return this.db.transaction(async (tx) => {
 *     // session.lock: a request whose lock expired moves nothing (see lockToken).
 *     if (mark?.lockToken && !(await tx.holdsLock(key, mark.lockToken))) throw new SessionLockLostError();
 *     const data = await tx.deleteReturning(key);
 *     if (mark) await tx.markMoved(key, mark.keepMs); // commit() then refuses changes.ofStoredSession ones
 *     return data;
 *   });
 * }
 */
export interface EndedSessionMark {
  readonly keepMs: number;
  /**
   * With `session.lock`, when the request holds the lock on this key: the token of that lock, as
   * {@link SessionChanges.lockToken} for a commit. The take or remove applies only while that token still holds the
   * lock, checked in the same atomic step; otherwise it throws `SessionLockLostError` and applies nothing (no
   * delete, no mark): the lock expired and another request may have written the session since, and that write
   * must neither move with this request's values nor be deleted. Given only to stores that renew locks
   * ({@link SessionStore.renewLock}), which check it against the locks their own `tryLock` takes. A store that
   * ignores it moves and ends sessions unfenced.
   */
  readonly lockToken?: string;
  /**
   * How long the caller waits for this take or remove, in ms (`session.ioTimeout`), as
   * {@link SessionCommitLimits.ioTimeout} for a commit: a store whose takes and removes carry a deadline (the Redis
   * and PostgreSQL stores) makes it no later than this after the call, so a sign-in or sign-out answered 503 never
   * moves or deletes the session afterwards.
   */
  readonly ioTimeout?: number;
  /**
   * For `take` only: the request loaded the session from this key, or found none there, this long ago (plus a few
   * seconds). When the key now holds no session and carries a moved mark left at most this many ms ago (another
   * request's `regenerate()` moved it meanwhile: a sign-in sent twice, both loaded before either moved), the take
   * throws `SessionMovedError` and takes and marks nothing, checked in the same atomic step: the request answers 409
   * and its copy under a new key is deleted, so the browser keeps the other sign-in's session. Judged as
   * {@link SessionChanges.refuseIfMovedWithinMs}, against `keepMs`. A store that ignores it moves nothing there and
   * leaves its mark (the request keeps its own copy under its new key); see {@link SessionStore.refusesJustMoved}.
   */
  readonly refuseIfMovedWithinMs?: number;
}

/**
 * The limits a commit enforces on what is stored (`session.maxKeys`, `session.maxSessionBytes`):
 * a commit that would end over one, and larger than before, throws
 * `SessionLimitExceededError` and applies nothing.
 *
 * @example
 * async commit(key: string, changes: SessionChanges, idleTimeoutMs: number, limits?: SessionCommitLimits) {
 *   const keysAfter = await this.db.countAfter(key, changes);
 *   if (limits && keysAfter > limits.maxKeys) throw new SessionLimitExceededError('maxKeys', `${keysAfter} keys.`);
 * }
 */
export interface SessionCommitLimits {
  readonly maxKeys: number;
  readonly maxSessionBytes: number;
  /**
   * How long the caller waits for this commit, in ms (`session.ioTimeout`; 0 or absent: as long as the store
   * takes). A store whose commits carry a deadline (the Redis and PostgreSQL stores) makes it no later than
   * this after the call, so a commit the app gave up on (503) never applies afterwards, whichever of the two
   * timeouts is shorter.
   */
  readonly ioTimeout?: number;
}

/**
 * Where sessions live. The module picks one: {@link MemorySessionStore} (default),
 * {@link RedisSessionStore} (one hash per session, delta commits), or {@link CacheSessionStore}
 * over any {@link DistributedCache} (one record per session, each commit applied to the record as stored).
 *
 * @example
 * \@Module({ imports: [SessionModule.forRoot({ store: new MyAuditedStore() })] }) // a custom store
 * // or inject the module's store:
 * constructor(\@InjectSessionStore() private readonly store: SessionStore) {}
 */
export interface SessionStore {
  /** The session's values, sliding its idle timeout in the same operation; undefined when none. */
  load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined>;
  /**
   * Applies `changes` and sets the idle timeout. A store that writes deltas also gets the commit of
   * a request that removed its last values: it applies the removals (never a whole-session delete,
   * which would drop a concurrent request's values) and deletes the session only when what it
   * stores is then empty (no field, or only the `\u0000id` field). With `limits`, a commit that would
   * end over one (and larger than before) throws `SessionLimitExceededError`, applying nothing.
   */
  commit(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): Promise<void>;
  /** Slides the idle timeout without reading. */
  refresh(sessionKey: string, idleTimeoutMs: number): Promise<void>;
  /**
   * Deletes the session. With `mark` (`abandon()`), leaves an {@link EndedSessionMark} under the key, in
   * the same step; with its `lockToken`, only while that token holds the session's lock (else
   * `SessionLockLostError`, nothing deleted).
   */
  remove(sessionKey: string, mark?: EndedSessionMark): Promise<void>;
  /**
   * Deletes the session and answers what it held, in one atomic step: `regenerate()` moves the session
   * with it, so a value another request committed while this one ran moves too. With `mark`, leaves an
   * {@link EndedSessionMark} (the session moved) under the key, in the same step; with its `lockToken`, only while
   * that token holds the session's lock (else `SessionLockLostError`, nothing taken). Optional: without it,
   * a load then a remove (a value committed between the two is lost, and no moved mark is left).
   */
  take?(sessionKey: string, mark?: EndedSessionMark): Promise<SessionData | undefined>;
  /**
   * The {@link EndedSessionMark} under `sessionKey`, while it lasts: how the session left the key, and for how much
   * longer the mark is kept (ms). Asked before a request that found no session under its cookie's key writes one
   * there (or moves it with `regenerate()`): when `regenerate()` moved that key's session while the request ran (a
   * tab adding to a cart while another signs in, a sign-in sent twice), the request answers 409 `SessionMovedError`
   * and writes nothing, rather than starting a session under a key the browser is about to drop. Optional: a store
   * without it (or without marks) lets such a request write, as before.
   */
  endingOf?(
    sessionKey: string,
  ): Promise<{ readonly ending: SessionEnding; readonly remainingMs: number } | undefined>;
  /**
   * Takes the session's exclusive lock for `ttlMs`; false when another token holds it. Reentrant:
   * true (and the TTL renewed) when `token` holds it already, so a request retrying after a lost
   * reply finds the lock its first try took. `waiting.ioTimeout`: how long the caller waits for this try (as
   * for a commit); a store whose tries carry a deadline (the Redis and PostgreSQL stores) takes nothing after it,
   * so a try the request gave up on cannot hold the lock, for a whole `ttlMs`, after the request released it.
   */
  tryLock?(
    sessionKey: string,
    token: string,
    ttlMs: number,
    waiting?: Pick<SessionCommitLimits, 'ioTimeout'>,
  ): Promise<boolean>;
  /**
   * Extends the lock to `ttlMs` from now if `token` still holds it; false (and nothing taken) when it does
   * not. Unlike `tryLock` it never takes a free lock: a holder whose lock expired, and which another request
   * may have taken and released since, must not get it back. The module renews a held lock every third of
   * its TTL while the request runs; a store without it keeps the lock for its TTL only. A store with it also
   * gets `SessionChanges.lockToken` and `EndedSessionMark.lockToken`, and must refuse a commit, take or remove
   * whose token no longer holds the lock. A subclass that takes its locks elsewhere (replacing `tryLock`)
   * replaces this too, or its locks are not renewed (MemorySessionStore checks only the locks it took itself).
   */
  renewLock?(sessionKey: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `token` still owns it. */
  unlock?(sessionKey: string, token: string): Promise<void>;
  /**
   * True when `commit` applies the changes to what is stored (not a whole copy of the session): the commit of a
   * request that removed its last values then comes as a commit, which deletes the session only when what is stored
   * is empty afterwards; false gets a `remove` instead.
   */
  readonly writesDeltas: boolean;
  /** Store failures fail the request (503) when true; the session is just unavailable when false. */
  readonly throwOnError: boolean;
  /**
   * True when the store's `commit` honours {@link SessionChanges.refuseIfMovedWithinMs} and its `take`
   * {@link EndedSessionMark.refuseIfMovedWithinMs}, each in its atomic step (the memory, Redis and PostgreSQL stores): a request
   * that found no session under its cookie's key then writes one there (or moves it) without first reading the key's
   * mark ({@link endingOf}), so a move landing between a read and the write cannot slip through. A subclass that
   * replaces `commit` or `take` without calling the class's own must set it false.
   */
  readonly refusesJustMoved?: boolean;
  /** True for stores in this process's memory: they cannot hang, so `ioTimeout` is not armed for them. */
  readonly inProcess?: boolean;
  /**
   * The longest any call takes before it settles, for a store that bounds its calls itself. When it
   * is within `session.ioTimeout`, the module arms no timer of its own around the store's calls. `undefined`
   * (a getter's answer for a subclass, say) is the same as leaving it out.
   */
  readonly settlesWithinMs?: number | undefined;
  /**
   * True when `load` may answer without sliding the idle timeout (a near cache, or a slide made moments
   * ago): a load then does not count as a slide when deciding whether an untouched request slides.
   */
  readonly loadMaySkipSlide?: boolean;
  /**
   * Answers when the store can serve sessions, rejects with the reason (an Error whose message says
   * what failed: `Redis did not answer PING within 250 ms`, `connect ECONNREFUSED ...`). Bounded by the
   * store's operation timeout. Used by the health indicator (`nest-session-state/terminus`); a store
   * without it is reported up with `probe: 'none'`.
   */
  ping?(): Promise<void>;
  /**
   * A short name of the kind of store, for health reports and the `session.store` metric attribute:
   * `memory`, `redis`, `redis_cluster`, `postgresql`, `cache`. Custom stores: `custom` when left out.
   */
  readonly storeType?: string;
  /** Loads the store's near cache answered (`hits`) or sent on (`misses`), read when metrics are collected. */
  readonly nearCacheCounts?: { readonly hits: number; readonly misses: number } | undefined;
}

/** Injection token of the module's {@link SessionStore}. */
export const SessionStore = Symbol('SessionStore');

/**
 * Parameter decorator injecting the module's {@link SessionStore}.
 *
 * @example
 * \@Injectable()
 * export class SessionAdmin {
 *   constructor(\@InjectSessionStore() private readonly store: SessionStore) {}
 *   kill(sessionKey: string) { return this.store.remove(sessionKey); }
 * }
 */
export const InjectSessionStore = (): ParameterDecorator & PropertyDecorator => Inject(SessionStore);
