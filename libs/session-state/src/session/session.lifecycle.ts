import type { HttpExchange } from '../http/http-exchange.js';
import { loadedData } from './stores/loaded-data.js';
import { formatDeleteCookie, formatSetCookie } from '../http/set-cookie.js';
import type { Unprotected } from '../protection/cookie-signer.js';
import { randomBase64url } from '../protection/random-pool.js';
import { generateSessionKey } from '../protection/session-key.generator.js';
import { SessionResponseStartedError } from '../errors/response-started.errors.js';
import {
  isStoreRefusal,
  type StoreRefusal,
  SessionMovedError,
  SessionLockLostError,
  SessionLockTimeoutError,
  SessionUnavailableError,
} from '../errors/session.errors.js';
import {
  DistributedSession,
  SESSION_ID_FIELD,
  SESSION_USER_FIELD,
  type SessionHost,
  type SessionLimits,
} from './session.js';
import { guardedSessionId, storedSessionId } from '../users/user-session.fields.js';
import { isUserSessionIndexSource } from '../users/user-session-index.interface.js';
import { IoTimeoutError, type SessionRuntime } from './session.runtime.js';
import type {
  EndedSessionMark,
  SessionChanges,
  SessionData,
  SessionStore,
} from './stores/session-store.interface.js';
import { movedWithin } from './stores/ended-session.marks.js';
import { limitsForMove } from './moved-session.limits.js';
import { logEvent, SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const LOADED = Promise.resolve();
const ignore = (): void => undefined;
/**
 * How long before a request found no session under its cookie's key a `regenerate()` of that key still counts as
 * racing it (see refuseIfJustMoved): the time a browser takes to send a request and receive the sign-in's response.
 */
const JUST_MOVED_MS = 5_000;

/** The request that owns a session (its RequestState). */
export interface SessionOwner {
  /** The verified key of the request's session cookie (resolved once per request). */
  sessionCookieKey(): Unprotected<string> | undefined;
  /** The session is used: hold the response's first byte until it is committed. */
  touch(): void;
  /**
   * A commit the app ran that failed is the request's answer at once (GraphQL: a field may have reported it), so a
   * later commit of the request does not apply it.
   */
  answersEveryFailure?(): boolean;
}

/** The keys a request changed itself (set or removed), and whether it cleared the session. */
interface OwnChanges {
  readonly cleared: boolean;
  readonly keys: ReadonlySet<string>;
}

function ownChangesOf(changes: SessionChanges): OwnChanges {
  return { cleared: changes.cleared, keys: new Set([...changes.set.keys(), ...changes.removed]) };
}

/**
 * True when `session`, bound to a user, was revoked (or expired) while this request moved it: what the old
 * key held (`taken`) is not the session this request loaded. Not when the request binds or unbinds itself.
 */
function revokedWhileMoving(
  session: DistributedSession,
  taken: SessionData | undefined,
  own: ReadonlySet<string>,
): boolean {
  if (own.has(SESSION_USER_FIELD) || session.getReserved(SESSION_USER_FIELD) === undefined) return false;
  // `session.id` only reads the stored id here (it makes one when there is none).
  return session.getReserved(SESSION_ID_FIELD) === undefined || storedSessionId(taken) !== session.id;
}

/**
 * The whole record `values` as a commit: a clear and these values, for stores that write whole records too; fenced by
 * `lockToken` when given, guarded by nothing else.
 */
function wholeRecord(values: SessionData, lockToken?: string): SessionChanges {
  return {
    cleared: true,
    set: values,
    removed: new Set(),
    lockToken,
    snapshot: () => new Map(values),
    valueOfField: (field) => values.get(field),
  };
}

/** A store without `take`: its load then its remove (a commit between the two is not carried over). */
async function loadThenRemove(
  store: SessionStore,
  key: string,
  idleTimeout: number,
): Promise<SessionData | undefined> {
  const data = await store.load(key, idleTimeout);
  await store.remove(key);
  return data;
}

/** What a commit asks of the store for the recorded changes. */
interface PendingWrite {
  readonly key: string;
  readonly changes: SessionChanges;
  /** Nothing worth keeping is left: the stored session is deleted. */
  readonly remove: boolean;
  /**
   * The write empties a stored session and is not guarded (see guardedSessionId): the store deletes it, id
   * included, so once written the id is pending again, to be written with the next value (a bind, say) as a new
   * session's is. Else a later commit of this request would be guarded by an id no longer stored and apply nothing.
   */
  readonly idPendingAfter?: Uint8Array;
  /**
   * The write only removes what the request found (the session is empty after it): it stores nothing of this
   * request's, so the key does not count as stored by it (`persisted`) once written.
   */
  readonly emptying?: boolean;
}

/**
 * One request's session: reads the key from the cookie, loads lazily, and commits what changed
 * (the session commit path). Committing sets or deletes the cookie while headers can still change.
 */
@HiddenFromLogs()
export class SessionLifecycle implements SessionHost {
  readonly session = new DistributedSession(this);
  private keyResolved = false;
  private key: string | undefined;
  private keyFromCookie = false;
  /** The cookie's key, when it held a stored session as this request loaded it. */
  private loadedStoredKey: string | undefined;
  /** When the session was loaded (Date.now()): how long a move of its key may be judged recent (movedWindowMs). */
  private loadedAt = 0;
  /** The cookie's key when the load found no session under it (see refuseIfJustMoved). */
  private foundNothing: string | undefined;
  /** The key this request's own `regenerate()` took the session from (its mark is this request's). */
  private movedFrom: string | undefined;
  private rotated = false;
  private loading: Promise<void> | undefined;
  /** The last commit started (later ones run after it); none until the first commit. */
  private committing: Promise<void> | undefined;
  /** Commits started and not yet settled (the synchronous end-of-request commit waits for none). */
  private commitsRunning = 0;
  private cookieChange: 'set' | 'delete' | undefined;
  private replacedKey: string | undefined;
  private abandonedKey: string | undefined;
  private lockToken: string | undefined;
  private lockedKey: string | undefined;
  /** When the response's close stopped the held lock's renewal (see refusalText). */
  private renewalStoppedAt: number | undefined;
  /** The next renewal of the held lock (see renewLockWhileHeld). */
  private lockRenewal: NodeJS.Timeout | undefined;
  /** The key's data was written to the store, or its cookie set, during this request. */
  private persisted = false;
  /** The end-of-request commit ran: later changes could not be saved. */
  private closed = false;
  /** The end-of-request commit failed once: it is not retried (each try costs an ioTimeout). */
  private finishFailure: Error | undefined;
  /** The last commit failed (one the app ran: `commit()`, `UserSessions.bind()`), until one succeeds. */
  private lastCommitFailure: Error | undefined;
  /** abandon() ran after the last failed commit: a reaction to it (a failed sign-in abandons its session). */
  private abandonedSinceFailure = false;

  constructor(
    private readonly runtime: SessionRuntime,
    private readonly exchange: HttpExchange,
    private readonly owner: SessionOwner,
  ) {}

  get limits(): SessionLimits {
    return this.runtime.options;
  }

  /**
   * The key the session's data is stored under (UserSessions indexes it): the cookie's key, or the key
   * a commit of this request wrote; undefined for a key `regenerate()` made that no commit wrote yet.
   */
  storeKey(): string | undefined {
    return this.persisted || (this.keyFromCookie && this.replacedKey === undefined) ? this.key : undefined;
  }

  /** The key this request found the session under, if it found one (a binding made before is recorded under it). */
  loadedStoreKey(): string | undefined {
    return this.loadedStoredKey;
  }

  /** The failure every commit of the request is refused with, without trying (see {@link failureAnswered}). */
  refusingFailure(): Error | undefined {
    return this.finishFailure;
  }

  /** The verified session key from the request cookie, if any (never logged). */
  resolveKey(): string | undefined {
    if (this.keyResolved) return this.key;
    this.keyResolved = true;
    const verified = this.owner.sessionCookieKey();
    if (!verified) return undefined;
    this.key = verified.value;
    this.keyFromCookie = true;
    this.rotated = verified.rotated;
    return this.key;
  }

  load(): Promise<void> {
    this.owner.touch();
    this.loading ??= this.doLoad();
    return this.loading;
  }

  /**
   * Loads at once from the in-process store ({@link SessionRuntime.inProcessStore}): true when the
   * session is loaded, false when the load has to go through {@link load} (another store, or a load
   * already started).
   */
  loadNow(): boolean {
    const store = this.runtime.inProcessStore;
    if (!store || this.loading) return false;
    const key = this.resolveKey();
    let data: SessionData | undefined;
    if (key !== undefined) {
      try {
        data = store.loadNow(key, this.runtime.options.idleTimeout);
      } catch {
        return false; // load() tries again and reports the failure as usual
      }
      this.runtime.metrics?.loaded(data !== undefined);
    }
    this.owner.touch();
    this.loading = LOADED;
    if (key === undefined) this.session.attach(undefined, true);
    else this.attachLoaded(key, data);
    return true;
  }

  private async doLoad(): Promise<void> {
    const key = this.resolveKey();
    if (!key) {
      this.session.attach(undefined, true);
      return;
    }
    const { store, options } = this.runtime;
    try {
      if (options.lock) await this.acquireLock(key);
      const data = loadedData(await this.runtime.withIoTimeout(store.load(key, options.idleTimeout)));
      this.runtime.metrics?.loaded(data !== undefined);
      this.attachLoaded(key, data);
    } catch (error) {
      this.session.attach(undefined, false);
      // No one reads the answer: not a store failure (no metric, no warning that could hide a real one).
      if (error instanceof ClientWentAwayError) throw new SessionUnavailableError('lock', error);
      this.runtime.metrics?.failed('load', error);
      this.runtime.storeFailureLog.write(
        SessionLogEvents.SessionLoadFailed,
        `Session could not be loaded: ${this.runtime.failureText(error)}`,
      );
      throw new SessionUnavailableError(error instanceof SessionLockTimeoutError ? 'lock' : 'load', error);
    }
  }

  private attachLoaded(key: string, data: SessionData | undefined): void {
    if (!this.runtime.store.loadMaySkipSlide) this.runtime.markSlid(key);
    this.loadedStoredKey = data === undefined ? undefined : key;
    this.loadedAt = Date.now();
    if (!data) this.foundNothing = key;
    // Rate-limited: anyone can replay a cookie whose session is gone, once per request.
    if (!data)
      this.runtime.badCookieLog.write(
        SessionLogEvents.SessionExpired,
        'No session stored under this cookie (it expired, or its last value was removed): a new session starts ' +
          'under the same cookie.',
      );
    this.session.attach(data, true);
  }

  /**
   * Takes the session's lock. The token is drawn once and every try (the store's own retries too)
   * sends the same one, and the store's `tryLock` is reentrant: a try that ran in the store but whose
   * reply was lost is found by the next one instead of stranding the lock for its TTL. Waits back off
   * (see {@link lockBackoff}) and stop at `acquireTimeout`. On failure the lock is released in case a
   * try took it unseen; the release goes out after the tries, so on one connection it runs after them.
   */
  private async acquireLock(key: string): Promise<void> {
    const { store, options } = this.runtime;
    const lock = options.lock!;
    if (!store.tryLock) throw new Error('the session store does not support locking');
    // No one waits for the answer (here or, below, after a wait): taking the lock would only hold up the
    // session's next requests.
    if (this.exchange.closed) throw new ClientWentAwayError();
    const token = randomBase64url(16);
    const deadline = Date.now() + lock.acquireTimeout;
    // Released at shutdown only where the store fences a lock's token (renewLock): a request still running after
    // it must not commit over a request that took the lock since.
    const releases = store.renewLock ? this.runtime.lockReleases : undefined;
    let lastTry: Promise<boolean> | undefined;
    const tryLock = (): Promise<boolean> => {
      lastTry = store.tryLock!(key, token, lock.ttl, this.runtime.unlimited);
      // The store's own call, which may outlive this request's wait (ioTimeout) and take the lock after it.
      releases?.trying(key, token, lastTry);
      return this.runtime.withIoTimeout(lastTry);
    };
    try {
      for (let attempt = 0; !(await tryLock()); attempt++) {
        const left = deadline - Date.now();
        if (left <= 0) throw new SessionLockTimeoutError(lock.acquireTimeout);
        if (this.exchange.closed) throw new ClientWentAwayError();
        this.runtime.metrics?.lockWaited();
        await sleep(Math.min(left, lockBackoff(attempt, lock.retryInterval)));
      }
    } catch (error) {
      // Every try answered "held" (nothing taken) unless one failed: then it may have taken the lock unseen.
      if (!(error instanceof SessionLockTimeoutError || error instanceof ClientWentAwayError)) {
        this.releaseUnseenLock(key, token);
        // A try the request stopped waiting for (ioTimeout) may still be running, and take the lock after that
        // release found nothing (PostgreSQL: an insert that waited for another transaction's row, with a deadline
        // checked before the wait): released again if it turns out to have taken it. A try that failed by itself
        // has settled already: the release above follows it.
        if (error instanceof IoTimeoutError)
          void lastTry?.then(
            (taken) => taken && this.releaseUnseenLock(key, token),
            () => undefined,
          );
      }
      throw error;
    }
    if (this.closed) {
      // The end-of-request commit ran while this request waited (the response went out: a timeout
      // interceptor, say): nothing can commit any more, and nothing would release the lock.
      this.releaseUnseenLock(key, token);
      return;
    }
    if (this.exchange.closed) {
      // The client left during the last try.
      this.releaseUnseenLock(key, token);
      throw new ClientWentAwayError();
    }
    this.lockToken = token;
    this.lockedKey = key;
    this.renewLockWhileHeld(key, token, lock.ttl);
  }

  /**
   * Renews the lock every third of its TTL while this request holds it, so a request that runs longer
   * than the TTL keeps it. Stops at the release, when the response closed (an aborted request whose handler
   * never ends must not hold the session for ever), and when the lock was found lost. A renewal that fails is
   * tried again at the next turn: if none reaches the store within the TTL the lock expires, and the commit's
   * check (`SessionChanges.lockToken`) refuses this request's changes.
   */
  private renewLockWhileHeld(key: string, token: string, ttl: number): void {
    const store = this.runtime.store;
    // The response is still open here (acquireLock checked): its 'close' stops the renewal.
    if (!store.renewLock) return;
    const schedule = () => {
      this.lockRenewal = setTimeout(() => void renew(), Math.max(1, Math.floor(ttl / 3)));
      this.lockRenewal.unref();
    };
    const renew = async () => {
      let held = true;
      try {
        held = await this.runtime.withIoTimeout(store.renewLock!(key, token, ttl));
      } catch {
        // Not reached: tried again next turn; the commit's check decides.
      }
      if (held && this.lockToken === token && this.lockRenewal !== undefined) schedule();
      else this.stopLockRenewal();
    };
    schedule();
    this.exchange.onClose(() => {
      if (this.lockRenewal !== undefined) this.renewalStoppedAt = Date.now();
      this.stopLockRenewal();
    });
  }

  /**
   * Why the store refused a commit, for the log. A lock lost after the client went away was not renewed on purpose
   * (see renewLockWhileHeld): the store and the process are not to blame, as the error's own message would say.
   */
  private refusalText(error: StoreRefusal): string {
    // Renewed every third of the TTL until the close: before two thirds of it passed since, the close is not why.
    const stopped = this.renewalStoppedAt;
    const ttl = this.runtime.options.lock?.ttl ?? 0;
    if (
      !(error instanceof SessionLockLostError) ||
      stopped === undefined ||
      Date.now() - stopped < (ttl * 2) / 3
    )
      return error.message;
    return (
      'the response closed (its client went away) while this request held the session lock (session.lock), so the lock was no longer ' +
      "renewed and expired after session.lock.ttl before the request's handler finished: its session changes were " +
      'not saved, so that they cannot overwrite those of a request that took the lock meanwhile.'
    );
  }

  /**
   * The token a commit under the locked key carries (SessionChanges.lockToken), for stores that keep leases
   * (`renewLock`): a store that only takes and releases locks, such as a wrapper with its own `tryLock`
   * around a store it delegates commits to, gets none, so the inner store never checks a lock it did not take.
   */
  private fencingToken(): string | undefined {
    return this.runtime.store.renewLock ? this.lockToken : undefined;
  }

  private stopLockRenewal(): void {
    clearTimeout(this.lockRenewal);
    this.lockRenewal = undefined;
  }

  /** Releases a lock a failed acquisition may have taken without seeing the reply (fire and forget). */
  private releaseUnseenLock(key: string, token: string): void {
    const unlock = this.runtime.store.unlock?.(key, token);
    unlock?.then(
      () => this.runtime.lockReleases.released(token),
      (error: Error) => this.unlockFailed(key, token, error),
    );
  }

  /** A release that did not reach the store: counted, logged, and tried again until the lock would have expired. */
  private unlockFailed(key: string, token: string, error: unknown): void {
    this.runtime.metrics?.failed('unlock', error);
    const retried = this.runtime.lockReleases.retry(key, token, this.runtime.options.lock!.ttl);
    this.runtime.storeFailureLog.write(
      SessionLogEvents.SessionUnlockFailed,
      `Session lock could not be released${retried ? ' (tried again in the background)' : ''}: ` +
        this.runtime.failureText(error),
    );
  }

  beforeEstablish(): void {
    if (this.key !== undefined && this.abandonedKey === undefined) return;
    if (this.exchange.headersSent) this.responseStarted();
  }

  beforeChange(): void {
    this.changeCalls++;
    if (this.closed || this.moveUndone) this.responseStarted();
  }

  /** A `regenerate()` of this request was undone (see undoUnsentKey): nothing it changes is saved any more. */
  private moveUndone = false;

  /**
   * How many calls changed the session in this request (set, remove, clear, regenerate, abandon): a GraphQL
   * response whose field's commit failed stands only if nothing changed after it (RequestState).
   */
  changeCalls = 0;

  /** Something is to be committed: changes, a move, an end, or a commit running or failed. */
  get hasUncommittedChanges(): boolean {
    return !this.nothingToCommit;
  }

  /**
   * A value removed that the session did not hold. When the load found no session under the cookie's key, the
   * commit asks whether that key's session just moved (see refuseIfJustMoved): a cart cleared in one tab while
   * another signs in is refused (409), not answered as done while the session the browser keeps still holds it.
   */
  removedNothing(): void {
    if (
      this.foundNothing !== undefined &&
      this.foundNothing === this.key &&
      !this.persisted &&
      this.replacedKey === undefined
    )
      this.removedFromNothing = true;
  }

  /** See {@link removedNothing}: a removal from nothing is to be judged at commit. */
  private removedFromNothing = false;
  /** A commit that started the session (see refuseMovedWithin) failed without a verdict: it may have applied. */
  private startMayHaveApplied = false;

  private responseStarted(): never {
    const error = new SessionResponseStartedError();
    logEvent(this.runtime.logger, SessionLogEvents.SessionResponseStarted, error.message);
    throw error;
  }

  regenerate(): void {
    this.changeCalls++;
    if (this.key === undefined) return; // a session without a key gets a fresh one at commit anyway
    // The new key could never reach the browser: refuse rather than strand the session.
    if (this.exchange.headersSent || this.closed) this.responseStarted();
    if (this.replacedKey === undefined) {
      if (this.keyFromCookie || this.persisted) this.replacedKey = this.key;
    }
    const drawn = this.drawnKey === this.key;
    this.key = generateSessionKey();
    // A new session whose first write failed, moved before it was stored: it starts under the new key.
    if (drawn) this.drawnKey = this.key;
    this.persisted = false;
    this.cookieChange = 'set';
  }

  abandon(): void {
    this.changeCalls++;
    const stored = this.replacedKey ?? (this.keyFromCookie || this.persisted ? this.key : undefined);
    if (stored !== undefined && (this.exchange.headersSent || this.closed)) this.responseStarted();
    if (stored !== undefined) this.abandonedKey ??= stored;
    if (this.lastCommitFailure !== undefined) {
      // A reaction to the failure (an exception filter's sign-out): the abandon runs at the end of the request, though
      // the failed write does not (abandon() drops it: the session's changes and a move are reset below).
      this.abandonedSinceFailure = true;
      if (this.finishFailure === this.lastCommitFailure && !this.closed) this.finishFailure = undefined;
    }
    const browserHasCookie = this.keyFromCookie || this.cookieSent;
    this.replacedKey = undefined;
    this.key = undefined;
    this.persisted = false;
    this.cookieChange = browserHasCookie ? 'delete' : undefined;
  }

  /** A Set-Cookie for the session went into this response. */
  private cookieSent = false;

  /** The key drawn for a new session, until the store took its first write (then {@link started}). */
  private drawnKey: string | undefined;
  /** A new session's first write was stored: `SessionStarted` is logged with its cookie. */
  private started = false;

  /** Writes the changes (serialised with any commit already running). Throws when the store fails. */
  commit(): Promise<void> {
    // A commit that failed as the request's answer (a GraphQL field's error, an exception filter's reply) keeps its
    // changes out of every later commit of the request (a field's session.commit(), a UserSessions.bind()): they
    // were reported as not saved.
    // On GraphQL a failed explicit commit is the answer at once (a field may have reported it), unless the session was
    // abandoned since (a failed bind()'s cleanup: that abandon must run).
    if (
      this.finishFailure === undefined &&
      this.lastCommitFailure !== undefined &&
      !this.abandonedSinceFailure &&
      this.owner.answersEveryFailure?.()
    )
      this.finishFailed(this.lastCommitFailure);
    if (this.finishFailure !== undefined) return Promise.reject(this.finishFailure);
    this.commitsRunning++;
    const next = this.commitAfter(this.committing);
    this.committing = next.catch(ignore);
    return next;
  }

  /** The store failure of the last commit, cleared by one that succeeds (see {@link finish}). */
  private storeFailure: SessionUnavailableError | undefined;

  /** One commit, once the one before it (`previous`, which never rejects) settled. */
  private async commitAfter(previous: Promise<void> | undefined): Promise<void> {
    // Never at once: changes made in the same turn as the commit() call are part of it.
    await (previous ?? LOADED);
    try {
      await this.doCommit();
      this.storeFailure = undefined;
      this.lastCommitFailure = undefined;
    } catch (error) {
      if (!(error instanceof SessionResponseStartedError)) {
        this.lastCommitFailure = error as Error;
        this.abandonedSinceFailure = false;
      }
      // Counted unless nothing reached the store (response started, or no session since its load failed).
      if (
        !(error instanceof SessionResponseStartedError) &&
        !(error instanceof SessionUnavailableError && error.cause === undefined)
      )
        this.runtime.metrics?.failed('commit', error);
      // The app sees one error type for "the store failed", whatever the store threw.
      if (
        error instanceof SessionUnavailableError ||
        error instanceof SessionResponseStartedError ||
        isStoreRefusal(error) // not an outage
      ) {
        if (error instanceof SessionUnavailableError && error.cause !== undefined) this.storeFailure = error;
        throw error;
      }
      throw (this.lastCommitFailure = this.storeFailure = new SessionUnavailableError('commit', error));
    } finally {
      this.commitsRunning--;
    }
  }

  private async doCommit(): Promise<void> {
    const session = this.session;
    if (!session.isLoaded) return;
    if (!session.isAvailable) throw new SessionUnavailableError('commit');
    const runtime = this.runtime;
    const { store, options } = runtime;

    if (this.abandonedKey !== undefined) {
      const metrics = runtime.metrics;
      const startedAt = metrics ? metrics.now() : 0;
      // The mark turns away late commits of requests that loaded the session (SessionChanges.ofStoredSession).
      try {
        await runtime.withIoTimeout(store.remove(this.abandonedKey, this.endedMark(this.abandonedKey)));
      } catch (error) {
        // Still stored. A key this response issued (a sign-in whose bind failed: signed in, not listed by
        // UserSessions) must not reach the browser: its cookie goes as a deletion. The browser's own key keeps its
        // cookie, so the sign-out can be sent again.
        if (this.cookieSent && this.abandonedKey !== (this.loadedStoredKey ?? this.foundNothing))
          this.writeCookie();
        throw error;
      }
      metrics?.committed(startedAt);
      this.runtime.forgetSlide(this.abandonedKey);
      this.abandonedKey = undefined;
    }
    // A session about to start under the cookie's key, or to move from it, though the load found none there.
    const foundNothing = this.foundNothing;
    if (
      foundNothing !== undefined &&
      !this.persisted &&
      (this.replacedKey ?? this.key) === foundNothing &&
      this.movedFrom !== foundNothing &&
      this.readsMarkFirst()
    ) {
      await this.refuseIfJustMoved(foundNothing);
    }
    this.removedFromNothing = false;
    // What this request changed itself, before the move to a new key rewrites every value.
    const own = this.replacedKey === undefined ? undefined : ownChangesOf(session.changes);
    const clearsBefore = session.clears;
    // What to put back should the move fail: the request's own changes, not the rewrite (a retry that restored the
    // rewrite would take every value, the bound user's too, for its own: no revocation check, no carry-over).
    const beforeMove = this.replacedKey === undefined ? undefined : session.changes.copy();
    if (this.replacedKey !== undefined) session.changes.rewriteAll();

    const write = this.takeWrite();
    if (write) {
      const metrics = this.runtime.metrics;
      const startedAt = metrics ? metrics.now() : 0;
      try {
        await runtime.withIoTimeout(
          write.remove
            ? store.remove(write.key)
            : store.commit(
                write.key,
                write.changes,
                options.idleTimeout,
                beforeMove ? limitsForMove(options, write.changes.set) : options,
              ),
        );
      } catch (error) {
        session.changes.restore(beforeMove ?? write.changes);
        // The move's write under the new key failed without a verdict (a timeout, a lost reply): it may have landed.
        if (this.replacedKey !== undefined && !isStoreRefusal(error)) this.dropUnsentKey(write.key);
        // A start whose outcome is unknown (a timeout: it may have applied) is not judged again: its own session,
        // moved by a sign-in since, would read as another request's move.
        if (write.changes.refuseIfMovedWithinMs !== undefined && !(error instanceof SessionMovedError))
          this.startMayHaveApplied = true;
        throw error;
      }
      metrics?.committed(startedAt);
      this.written(write);
    } else if (this.rotated && this.replacedKey === undefined) {
      await this.keepOldSignatureIfMoved();
    }
    // The head left while the store was writing (a stream that outgrew the response hold): the
    // browser keeps the cookie it has, so nothing may stay stored under a key it never got.
    if (this.cookieChange === 'set' && this.exchange.headersSent) await this.undoUnsentKey(write, beforeMove);
    if (this.replacedKey !== undefined) {
      const old = this.replacedKey;
      // The old key stays replaced (and the new cookie unsent) until its data is really gone.
      let taken: SessionData | undefined;
      const mark: EndedSessionMark = {
        ...this.endedMark(old),
        refuseIfMovedWithinMs: this.refuseMovedWithinForTake(old),
      };
      const movedBefore = this.movedFrom;
      this.movedFrom = old; // a retry of this take finds its own mark there
      try {
        taken = await runtime.withIoTimeout(
          store.take ? store.take(old, mark) : loadThenRemove(store, old, options.idleTimeout),
        );
      } catch (error) {
        // Refused as moved by another request, this take marked nothing: a later commit of this request (the
        // end-of-request one after an explicit commit failed) is judged, and refused, again.
        if (error instanceof SessionMovedError) this.movedFrom = movedBefore;
        // With nothing to write (a clear() then regenerate()), the clear must come back too.
        if (error instanceof SessionLockLostError || error instanceof SessionMovedError)
          await this.undoLostMove(beforeMove);
        else this.dropUnsentCopy(beforeMove);
        throw error;
      }
      this.replacedKey = undefined;
      this.runtime.forgetSlide(old);
      if (own && revokedWhileMoving(session, taken, own.keys)) {
        await this.dropMovedSession();
        return;
      }
      // The head left while the take ran: the browser keeps the old key, which the take emptied.
      if (this.cookieChange === 'set' && this.exchange.headersSent)
        await this.undoTakenMove(old, taken, write, beforeMove, movedBefore === old);
      this.writeCookie();
      if (own && !own.cleared) {
        // Gone from the old key though this request loaded it there: emptied (another request removed its last
        // values) or expired meanwhile. What it loaded must not come back under the new key: only its own changes
        // (and the session's reserved fields) move, as after a take that found the session emptied of them.
        const stored = taken ?? (old === this.loadedStoredKey ? session.reservedFields() : undefined);
        // What the request changed while the move ran (an operation batched beside a GraphQL sign-in) is its own too:
        // the old key's value of it is older, and a clear() or an abandon() then wins over every carried value.
        const meanwhile = ownChangesOf(session.changes);
        if (stored && !meanwhile.cleared && session.clears === clearsBefore)
          await this.carryOver(stored, new Set([...own.keys, ...meanwhile.keys]));
      }
    }
    this.writeCookie();
  }

  /**
   * This request found no session under the key its cookie carried, and is about to write one there (or move it
   * with `regenerate()`). If `regenerate()` moved that key's session while this request ran (or shortly before it
   * found nothing: the browser sent it before the new cookie arrived), the browser is getting the new cookie: a
   * session written under the old key would be one it never sends again, a 200 for values saved nowhere it reads
   * (a cart item added in one tab while another signs in; the second of a sign-in sent twice, whose empty session
   * would replace the first's cookie). It answers 409 `SessionMovedError` instead, writing nothing: sent again, the
   * request carries the new cookie. A move long before (a browser whose sign-in response was lost keeps the old
   * cookie) lets it start a session there, as before. One store read, only on this path; a store that refuses a
   * just-moved start in its commit (`refusesJustMoved`) is asked there instead (refuseMovedWithin), atomically.
   */
  private async refuseIfJustMoved(key: string): Promise<void> {
    const store = this.runtime.store;
    if (!store.endingOf) return;
    const mark = await this.runtime.withIoTimeout(store.endingOf(key));
    if (movedWithin(mark, this.runtime.options.idleTimeout, this.movedWindowMs()))
      throw new SessionMovedError();
  }

  /**
   * A cookie under an older secret is re-signed on a read-only use. If `regenerate()` in another request (a sign-in)
   * moved the session off its key while this one ran, the browser is getting the new key's cookie: the old key
   * re-signed, arriving after it, would replace it and sign the user out. The cookie is then left as it is (the browser
   * drops it for the new one). One store read, only for a rotated cookie (once per session after a rotation); a read
   * that fails leaves the cookie as it is too: it still verifies, and the next request re-signs it.
   */
  private async keepOldSignatureIfMoved(): Promise<void> {
    const store = this.runtime.store;
    if (!this.rotated || this.cookieChange !== undefined || this.key === undefined || !store.endingOf) return;
    let mark: Awaited<ReturnType<NonNullable<SessionStore['endingOf']>>>;
    try {
      mark = await this.runtime.withIoTimeout(store.endingOf(this.key));
    } catch {
      this.rotated = false;
      return;
    }
    if (movedWithin(mark, this.runtime.options.idleTimeout, this.movedWindowMs())) this.rotated = false;
  }

  /**
   * Whether this commit, starting a session under (or moving it from) the key the load found empty, reads that key's
   * mark first (refuseIfJustMoved): when only removals of values the session did not hold are due (nothing to write
   * that the store could judge), or, on a store that does not judge it in its commit and take
   * (`SessionStore.refusesJustMoved`), when a write or a move is due.
   */
  private readsMarkFirst(): boolean {
    const { session } = this;
    const changes = session.changes;
    if (this.removedFromNothing && changes.isEmpty && this.replacedKey === undefined) return true;
    if (this.runtime.store.refusesJustMoved) return false;
    return this.replacedKey !== undefined || !session.isEmpty || changes.cleared || changes.removed.size > 0;
  }

  /**
   * How long ago a move of the key this request loaded (or found empty) may have been to count as one it raced: since
   * the load, and JUST_MOVED_MS before it (the browser sent the request before the sign-in's new cookie arrived).
   */
  private movedWindowMs(): number {
    return Date.now() - this.loadedAt + JUST_MOVED_MS;
  }

  /**
   * For the commit of a session starting under the key the load found empty, on a store that refuses just-moved
   * writes in its commit (`SessionStore.refusesJustMoved`): how long ago a move of that key must have been to refuse
   * the write, as refuseIfJustMoved judges it; undefined for every other commit.
   */
  private refuseMovedWithin(): number | undefined {
    const foundNothing = this.foundNothing;
    if (
      foundNothing === undefined ||
      this.startMayHaveApplied ||
      foundNothing !== this.key ||
      this.persisted ||
      this.replacedKey !== undefined ||
      this.movedFrom === foundNothing ||
      !this.runtime.store.refusesJustMoved
    )
      return undefined;
    return this.movedWindowMs();
  }

  /**
   * For `regenerate()`'s take of `old`, the key this request loaded the session from or found empty: how long ago
   * another request's move of it must have been to refuse this one (see EndedSessionMark.refuseIfMovedWithinMs):
   * movedWindowMs. Undefined for a key this request moved already (a retry finds its own mark).
   */
  private refuseMovedWithinForTake(old: string): number | undefined {
    if (this.movedFrom === old) return undefined;
    if (old !== this.loadedStoredKey && old !== this.foundNothing) return undefined;
    return this.movedWindowMs();
  }

  /**
   * The mark a take or remove of `key` leaves (see EndedSessionMark), with the lock's token when this request holds
   * the lock on `key`: then the store moves or ends the session only while the lock is still this request's.
   */
  private endedMark(key: string): EndedSessionMark {
    const { idleTimeout, ioTimeout } = this.runtime.options;
    return {
      keepMs: idleTimeout,
      lockToken: key === this.lockedKey ? this.fencingToken() : undefined,
      ioTimeout,
    };
  }

  /**
   * `regenerate()`'s take was refused: the lock on the old key is lost (another request may have written there
   * since, and keeps its write under the key the browser holds), or another request moved the session from it since
   * this one loaded it (a sign-in sent twice: the browser keeps that one's cookie). The session was written under
   * the new key first: that goes, and the new key's cookie is never sent. The request's own changes (`restored`, as
   * before the move rewrote every value) are recorded again, as after any failed commit.
   */
  private async undoLostMove(restored: SessionChanges | undefined): Promise<void> {
    if (restored) this.session.changes.restore(restored);
    if (!this.persisted) return;
    const unsent = this.key!;
    this.persisted = false;
    await this.runtime.withIoTimeout(this.runtime.store.remove(unsent));
    this.runtime.forgetSlide(unsent);
  }

  /**
   * The take of a move failed (a timeout, an outage: the request answers 503 and the browser keeps the old key): the
   * copy already written under the new key is deleted, not left holding the session and the change that answered
   * 503 until its idle timeout (a probe: a full copy per failed sign-in, a bound one listed nowhere). In the
   * background, so a stalled store does not hold the answer for a second timeout; a later try of the move in this
   * request writes under another new key, which that delete cannot reach.
   */
  private dropUnsentCopy(restored: SessionChanges | undefined): void {
    if (restored) this.session.changes.restore(restored);
    if (!this.persisted) return;
    this.persisted = false;
    this.dropUnsentKey(this.key!);
  }

  /**
   * Deletes what a failed move may have written under `unsent`, the new key no browser got (see dropUnsentCopy;
   * also after its first write there failed without a verdict, which may have landed), and draws another one for a
   * later try of the move. A store that applies one connection's commands in order (Redis) runs the delete after a
   * late write it may still hold.
   */
  private dropUnsentKey(unsent: string): void {
    this.key = generateSessionKey();
    if (this.drawnKey === unsent) this.drawnKey = this.key;
    this.deleteUnsentKey(unsent);
  }

  /** Deletes `unsent`, a key no browser got, in the background (see dropUnsentKey). */
  private deleteUnsentKey(unsent: string): void {
    this.runtime.forgetSlide(unsent);
    // A store whose remove throws at once must not replace the failure, the request's answer.
    Promise.resolve()
      .then(() => this.runtime.withIoTimeout(this.runtime.store.remove(unsent)))
      .catch((error: unknown) =>
        this.runtime.storeFailureLog.write(
          SessionLogEvents.SessionMoveCopyNotDeleted,
          'The copy of a session whose move failed may not have been deleted (it expires after the idle timeout; ' +
            `no browser holds its key): ${this.runtime.failureText(error)}`,
        ),
      );
  }

  /**
   * The session was bound to a user and revoked (or expired) while this request moved it to a new key:
   * the new key must not bring it back, signed in and listed nowhere. It is deleted, and the browser's
   * cookie with it, as a revocation would have done.
   */
  private async dropMovedSession(): Promise<void> {
    const moved = this.key;
    this.key = undefined;
    this.persisted = false;
    this.session.attach(undefined, true);
    this.cookieChange = this.keyFromCookie || this.cookieSent ? 'delete' : undefined;
    if (moved !== undefined) {
      await this.runtime.withIoTimeout(this.runtime.store.remove(moved));
      this.runtime.forgetSlide(moved);
    }
    this.writeCookie();
  }

  /**
   * After `regenerate()`: what other requests committed under the old key while this one ran (what the
   * old key held when it was taken, for keys this request did not change itself) goes to the new key too.
   * Not after a `clear()`, which drops what came before it.
   */
  private async carryOver(taken: SessionData, own: ReadonlySet<string>): Promise<void> {
    if (!this.session.absorb(taken, own)) return;
    const write = this.takeWrite();
    if (!write) return;
    const { store, options } = this.runtime;
    try {
      // No limits: other requests' values the store accepted already, which this move must not drop
      // (with this request's own, the session may end over a limit, as concurrent commits can). The
      // deadline still ends when the app stops waiting (ioTimeout), as every commit's does.
      await this.runtime.withIoTimeout(
        write.remove
          ? store.remove(write.key)
          : store.commit(write.key, write.changes, options.idleTimeout, this.runtime.unlimited),
      );
    } catch (error) {
      this.session.changes.restore(write.changes);
      throw error;
    }
    this.written(write);
  }

  /**
   * The new key's cookie could not be sent: its data is removed. After `regenerate()` the session keeps the key the
   * browser still holds, without the values this request set: saved under a key issued before `regenerate()`, they
   * could raise its privileges (a sign-in's user) under a key an attacker may have planted, the session fixation
   * `regenerate()` is for. Its removals and `clear()` (`beforeMove`, recorded before the move rewrote every value) do
   * apply there, as a commit of the stored session (a sign-out's `clear()` signs out; another request's write there
   * meanwhile stays, and a session ended there meanwhile stays ended). The request changes nothing more. Refused loudly
   * (SessionResponseStartedError, at warn).
   */
  private async undoUnsentKey(
    write: PendingWrite | undefined,
    beforeMove: SessionChanges | undefined,
  ): Promise<never> {
    const { store, options } = this.runtime;
    const io = <T>(operation: Promise<T>) => this.runtime.withIoTimeout(operation);
    const unsent = this.key!;
    const kept = this.replacedKey;
    const writtenUnsent = write !== undefined && !write.remove;
    this.cookieChange = undefined;
    this.persisted = false;
    this.moveUndone = true;
    let notKept: Error | undefined;
    if (kept !== undefined) {
      this.key = kept;
      this.replacedKey = undefined;
      this.persisted = true;
      const back = this.undoneMoveWrite(kept, write, beforeMove);
      try {
        if (back)
          await io(
            back.remove ? store.remove(kept) : store.commit(kept, back.changes, options.idleTimeout, options),
          );
      } catch (error) {
        if (!back || !isStoreRefusal(error)) {
          // Not tried again: a later commit of the request would write the session as it holds it, with the values
          // this request set. The copy under the unsent key goes in any case.
          if (writtenUnsent) this.deleteUnsentKey(unsent);
          this.cookieNotSent(
            'regenerate() was undone, the session keeps its key as it was (its removals and clear() could not be ' +
              `applied: ${this.runtime.failureText(error)})`,
          );
          throw error;
        }
        // Another request took the lock (and may have written the kept key), or moved the session from it: its
        // values stay.
        notKept = error;
      }
      if (back && !notKept) this.written(back);
    } else {
      this.key = undefined;
    }
    const outcome =
      kept === undefined
        ? 'the new session was not kept'
        : notKept instanceof SessionLockLostError
          ? 'regenerate() was undone, the session keeps its key and nothing of this request (its session lock was lost)'
          : notKept instanceof SessionMovedError
            ? 'regenerate() was undone and nothing of this request was kept (another request moved the session meanwhile)'
            : notKept
              ? `regenerate() was undone and nothing of this request was kept (${notKept.message})`
              : 'regenerate() was undone, the session keeps its key without the values this request set (its removals ' +
                'and clear() apply)';
    return this.undone(unsent, writtenUnsent, outcome);
  }

  /**
   * The head left while `regenerate()`'s take of `old` ran (a stream outgrew the response hold after the move's first
   * write): the take landed, and the browser keeps `old`'s cookie, a key that now holds nothing. The session goes back
   * there as the take found it (other requests' commits included), without the values this request set after
   * `regenerate()`, its removals and `clear()` applied. A session bound to a user is ended instead (signed out, and
   * unlisted: see unlistEnded): a revocation between the take and this write could not be told. When the take found
   * nothing because this request's own earlier try had taken it (`takenBefore`: its reply was lost), the values come
   * from the move's write, as in undoneMoveWrite. The copy under the new key is deleted. Refused loudly, as
   * undoUnsentKey.
   */
  private async undoTakenMove(
    old: string,
    taken: SessionData | undefined,
    write: PendingWrite | undefined,
    beforeMove: SessionChanges | undefined,
    takenBefore: boolean,
  ): Promise<never> {
    const { store, options } = this.runtime;
    const unsent = this.key!;
    const writtenUnsent = write !== undefined && !write.remove;
    const ownSets = new Set(beforeMove?.set.keys());
    let values: SessionData;
    if (taken) {
      values = beforeMove?.cleared ? new Map<string, Uint8Array>() : new Map(taken);
      for (const field of beforeMove?.removed ?? []) values.delete(field);
    } else if (takenBefore && writtenUnsent) {
      values = new Map([...write.changes.set].filter(([field]) => !ownSets.has(field)));
    } else {
      values = new Map();
    }
    // The binding the session had before this request (its own unbind() is not applied: its index step never ran).
    const bound = (taken ?? values).get(SESSION_USER_FIELD);
    const stored = storedSessionId(taken ?? values);
    // A session bound to a user is not written back: a revocation between the take and this write found nothing to
    // delete, and could not be told here (its values, a sign-in's marker among them, would come back).
    if (bound) values.clear();
    this.session.changes.reset();
    this.cookieChange = undefined;
    this.moveUndone = true;
    this.key = old;
    this.persisted = false;
    const outcome = bound
      ? 'regenerate() was undone after its move, and the session, bound to a user, was ended (signed out: a ' +
        'revocation meanwhile could not be told)'
      : 'regenerate() was undone after its move, the session keeps its key without the values this request set after ' +
        'regenerate() (its removals and clear() apply)';
    if (values.size > 0) {
      // Unguarded, not even by the lock (renewed no longer once the response closed, it may have expired during a slow
      // take): the take left the key empty and marked moved, which turns away the commits of requests that loaded it,
      // and a request that found it empty meanwhile is refused its start there (just moved).
      try {
        // No limits: what the store accepted already, as carryOver's.
        await this.runtime.withIoTimeout(
          store.commit(old, wholeRecord(values), options.idleTimeout, this.runtime.unlimited),
        );
        this.persisted = true;
      } catch (error) {
        if (writtenUnsent) this.deleteUnsentKey(unsent);
        this.cookieNotSent(
          'regenerate() was undone after its move, and the session could not be written back under the key the ' +
            `browser keeps (it is lost): ${this.runtime.failureText(error)}`,
        );
        throw error;
      }
    }
    if (bound) await this.unlistEnded(old, bound, stored);
    return this.undone(unsent, writtenUnsent, outcome);
  }

  /**
   * After undoTakenMove ended a session bound to `user`: its entry in the user's index, which records `old`, is
   * dropped too (the index would drop it when met, the session being gone). Best effort.
   */
  private async unlistEnded(old: string, user: Uint8Array, sessionId: string | undefined): Promise<void> {
    const store = this.runtime.store;
    if (sessionId === undefined || !isUserSessionIndexSource(store)) return;
    await this.runtime
      .withIoTimeout(store.userSessionIndex().remove(new TextDecoder().decode(user), sessionId, old))
      .catch((error: unknown) =>
        this.runtime.storeFailureLog.write(
          SessionLogEvents.UserSessionsFailed,
          `The user index entry of a session ended by an undone regenerate() was not dropped: ${this.runtime.failureText(error)}`,
        ),
      );
  }

  /** The end of an undone move (undoUnsentKey, undoTakenMove): the unsent key's copy goes, and the refusal is logged. */
  private async undone(unsent: string, writtenUnsent: boolean, outcome: string): Promise<never> {
    if (writtenUnsent) await this.runtime.withIoTimeout(this.runtime.store.remove(unsent));
    this.runtime.forgetSlide(unsent);
    this.cookieNotSent(outcome);
    throw new SessionResponseStartedError();
  }

  /** Logs an undone move or a new session not kept (see undoUnsentKey), with its outcome. */
  private cookieNotSent(outcome: string): void {
    logEvent(
      this.runtime.logger,
      SessionLogEvents.SessionCookieNotSent,
      `The response headers left before the session cookie could be sent: ${outcome}. ` +
        new SessionResponseStartedError().message,
    );
  }

  /**
   * What an undone move writes under `kept` (see undoUnsentKey): the request's own removals and `clear()`, none of its
   * sets. When this request's own take of `kept` may have landed already (tried before in this request, its outcome
   * unknown), `kept` may hold nothing but this request's moved mark, and the session's values are only in the move's
   * write: those go back whole, unguarded, without the values the request set and without a binding to a user (whether
   * the session was revoked meanwhile cannot be told there: signed out rather than signed in and listed nowhere).
   */
  private undoneMoveWrite(
    kept: string,
    write: PendingWrite | undefined,
    beforeMove: SessionChanges | undefined,
  ): PendingWrite | undefined {
    const changes = this.session.changes;
    if (this.movedFrom === kept) {
      const ownSets = new Set(beforeMove?.set.keys());
      changes.reset();
      if (!write || write.remove) return undefined;
      const set = new Map(
        [...write.changes.set].filter(([field]) => !ownSets.has(field) && field !== SESSION_USER_FIELD),
      );
      const lockToken = kept === this.lockedKey ? this.fencingToken() : undefined;
      return { key: kept, changes: wholeRecord(set, lockToken), remove: false };
    }
    if (beforeMove) changes.restore(beforeMove);
    if (!this.runtime.store.writesDeltas) {
      // A store that writes whole records would write the session as this request holds it, its values included:
      // only a clear (a sign-out) is applied, as a delete.
      const cleared = changes.cleared;
      const taken = changes.take();
      return cleared ? { key: kept, changes: taken, remove: true } : undefined;
    }
    const ownSets = new Set(changes.set.keys());
    changes.set.clear();
    // Under the lock only while it is still this request's; turned away where the session ended meanwhile.
    const pending = this.takeWrite();
    if (!pending || ownSets.size === 0) return pending;
    // The guard of a bound session judges the session as the kept key holds it, without what this request set (its
    // bind, an id it created): an id the kept key never had would apply nothing.
    const taken = pending.changes;
    const view: SessionChanges = {
      ...taken,
      snapshot: () => {
        const values = taken.snapshot();
        for (const field of ownSets) values.delete(field);
        return values;
      },
      valueOfField: (field) =>
        ownSets.has(field)
          ? undefined
          : taken.valueOfField
            ? taken.valueOfField(field)
            : taken.snapshot().get(field),
    };
    return { ...pending, changes: view };
  }

  /**
   * Takes the recorded changes and says what they need from the store (undefined: nothing). With
   * `inPlace` (a synchronous write) the tracker itself is handed over, to be reset once written.
   */
  private takeWrite(inPlace = false): PendingWrite | undefined {
    const session = this.session;
    if (session.changes.isEmpty) return undefined;
    // Under the locked key the store applies it only while the lock is still this request's.
    session.changes.lockToken =
      this.key === this.lockedKey && this.replacedKey === undefined ? this.fencingToken() : undefined;
    // Under the key the request loaded a stored session from, or wrote itself (see SessionChanges.ofStoredSession).
    session.changes.ofStoredSession =
      this.key !== undefined &&
      this.replacedKey === undefined &&
      (this.persisted || this.key === this.loadedStoredKey);
    const take = (): SessionChanges => (inPlace ? session.changes : session.changes.take());
    if (session.isEmpty) {
      // Nothing worth keeping (at most the id): empty sessions are not retained.
      const stored = this.key !== undefined && (this.keyFromCookie || this.persisted) && !this.replacedKey;
      // A delta store gets the removals as a commit: it deletes the session only if it is empty
      // once they are applied to what it stores, so a concurrent request's new values survive.
      // A store whose commits write whole copies (writesDeltas false) can only delete it.
      const changes = session.changes;
      const id = changes.set.get(SESSION_ID_FIELD);
      // Only the id pending (read, or pending again after this request emptied the stored session): nothing to write.
      const onlyId =
        id !== undefined && changes.set.size === 1 && !changes.cleared && changes.removed.size === 0;
      if (stored && !onlyId) {
        // A guarded write (an unbind, a clear of a bound session) may find the session revoked and apply nothing:
        // the id stays out of later commits then, so they stay guarded and cannot bring the session back.
        const unguarded = guardedSessionId(changes) === undefined;
        const idPendingAfter = unguarded ? session.getReserved(SESSION_ID_FIELD) : undefined;
        // A removal from a session just moved away changes nothing the browser keeps: refused as a write is.
        changes.refuseIfMovedWithinMs = this.refuseMovedWithin();
        return {
          key: this.key!,
          changes: take(),
          remove: !this.runtime.store.writesDeltas,
          idPendingAfter,
          emptying: true,
        };
      }
      // The id stays to be written with the first value (a bind, say): read before, it is the session's id.
      changes.reset();
      if (id !== undefined) changes.set.set(SESSION_ID_FIELD, id);
      return undefined;
    }
    if (this.key === undefined) {
      if (!this.runtime.mayWriteCookie(this.exchange, this.runtime.options.cookie)) {
        logEvent(
          this.runtime.logger,
          SessionLogEvents.SessionNotStoredWithoutConsent,
          'Session not stored: the visitor has not consented to non-essential cookies.',
        );
        session.changes.reset();
        return undefined;
      }
      this.key = generateSessionKey();
      this.cookieChange = 'set';
      // SessionStarted waits for the store to take this key's write, and for its cookie.
      this.drawnKey = this.key;
    }
    session.changes.refuseIfMovedWithinMs = this.refuseMovedWithin();
    return { key: this.key, changes: take(), remove: false };
  }

  private written(write: PendingWrite): void {
    const id = write.idPendingAfter;
    // Not after a clear() made while the write ran: the session has no id (or a new one) then.
    if (id && this.session.getReserved(SESSION_ID_FIELD) === id)
      this.session.changes.set.set(SESSION_ID_FIELD, id);
    // Nothing of this request's is stored: a later commit of it starts the session, as a first write would.
    if (write.remove || write.emptying) return;
    if (write.key === this.drawnKey) {
      this.drawnKey = undefined;
      this.started = true;
    }
    this.persisted = true;
    this.runtime.markSlid(write.key);
  }

  /**
   * No store call and no cookie is due: the session was not loaded (or its load failed), or it was
   * only read; no commit is running and none failed.
   */
  private get nothingToCommit(): boolean {
    if (this.commitsRunning > 0 || this.finishFailure !== undefined) return false;
    const session = this.session;
    if (!session.isLoaded || !session.isAvailable) return true;
    return (
      session.changes.isEmpty &&
      !this.removedFromNothing &&
      this.abandonedKey === undefined &&
      this.replacedKey === undefined &&
      this.cookieChange === undefined &&
      !(this.rotated && this.key !== undefined)
    );
  }

  /**
   * The end-of-request commit without a promise: true when it is done (nothing to commit and no lock
   * to release, on any store; or committed into the in-process store), false when it has to go
   * through {@link finish} (another store, a commit still running, a key to delete, an earlier failure).
   */
  finishNow(): boolean {
    if (this.writtenCookie !== undefined) this.keepWrittenCookie();
    // A read-only request: no promise chain (finish, commit, doCommit) for a commit that writes nothing.
    if (this.lockToken === undefined && this.nothingToCommit) return true;
    const store = this.runtime.inProcessStore;
    if (!store || this.commitsRunning > 0 || this.finishFailure !== undefined) return false;
    // Past the line above, the session is loaded and available (else nothing was to commit).
    const session = this.session;
    if (this.abandonedKey !== undefined || this.replacedKey !== undefined || this.removedFromNothing)
      return false;
    // A cookie to re-sign under the newest secret: the store's moved mark is read first (keepOldSignatureIfMoved).
    if (this.rotated && this.cookieChange === undefined && session.changes.isEmpty) return false;
    const write = this.takeWrite(true);
    if (write) {
      const metrics = this.runtime.metrics;
      const startedAt = metrics ? metrics.now() : 0;
      try {
        if (write.remove) store.removeNow(write.key);
        else
          store.commitNow(write.key, write.changes, this.runtime.options.idleTimeout, this.runtime.options);
      } catch {
        return false; // the changes are still recorded: finish() tries again and applies the failure policy
      }
      metrics?.committed(startedAt);
      session.changes.reset();
      this.written(write);
    }
    this.writeCookie();
    return true;
  }

  /** The session cookie's Set-Cookie this response carries (see keepWrittenCookie). */
  private writtenCookie: string | undefined;

  /**
   * Before the head leaves (the end of the request's commit): the session cookie a commit in Nest's pipeline set
   * (SessionStateInterceptor) is put back when code after it replaced the Set-Cookie header whole
   * (`res.setHeader('Set-Cookie', ...)` in an outer interceptor or a filter) or removed it: a new session must not be
   * stored with its cookie never sent, nor an abandoned one's deletion lost. Caching is prevented again (code after
   * the commit may have made the response cacheable).
   */
  private keepWrittenCookie(): void {
    if (this.exchange.headersSent) return;
    const name = `${this.runtime.options.cookie.name}=`;
    if (!this.exchange.setCookies().some((cookie) => cookie.startsWith(name)))
      this.exchange.appendSetCookie(this.writtenCookie!);
    // A cookie for one visitor: no shared cache may keep the response, whatever Cache-Control was set since.
    this.exchange.preventCaching();
  }

  private writeCookie(): void {
    const change = this.cookieChange ?? (this.rotated && this.key !== undefined ? 'set' : undefined);
    if (!change || this.exchange.headersSent) return;
    const cookie = this.runtime.options.cookie;
    this.cookieChange = undefined;
    this.rotated = false;
    const attributes = this.runtime.cookieAttributes(this.exchange, cookie);
    // Replace, not append: a commit earlier in this request may have set the cookie already.
    if (change === 'delete') {
      this.writtenCookie = formatDeleteCookie(cookie.name, attributes);
      this.exchange.replaceSetCookie(cookie.name, this.writtenCookie);
    } else {
      const value = this.runtime.signer.sign(this.key!);
      this.writtenCookie = formatSetCookie(cookie.name, value, attributes);
      this.exchange.replaceSetCookie(cookie.name, this.writtenCookie);
      this.cookieSent = true;
      if (this.started) {
        this.started = false;
        logEvent(this.runtime.logger, SessionLogEvents.SessionStarted, 'Session started.');
      }
    }
    this.exchange.preventCaching();
  }

  /**
   * The failure of a commit the app ran (`commit()`, `UserSessions.bind()`) is the request's answer: an exception
   * filter renders `error` (that failure, or an error caused by it), or, without `error`, the response reports an
   * error. Its changes are not tried again at the end of the request (the answer says they were not saved, and a
   * retry that landed would make it false), and later commits of the request reject with it. An abandon after it
   * (before or after this answer) still runs, alone with what follows it: a failed sign-in's session is deleted, an
   * exception filter's sign-out applies. False when no commit failed last, or `error` is another.
   */
  failureAnswered(error?: unknown): boolean {
    const failed = this.lastCommitFailure;
    if (failed === undefined || (error !== undefined && !causedBy(error, failed))) return false;
    // A session whose load failed commits nothing anyway: the failure is the load's, logged as such.
    if (this.session.isLoaded && !this.session.isAvailable) return true;
    if (!this.abandonedSinceFailure) this.finishFailed(failed);
    return true;
  }

  /** Records the request's commit failure, logged once: a refusal (413, 409) apart from an outage. */
  private finishFailed(error: Error): void {
    if (this.finishFailure !== undefined) return;
    this.finishFailure = error;
    if (isStoreRefusal(error)) {
      // Refused by the store, which works: not an outage. Logged apart from SessionCommitFailed (an alert on
      // outages must not fire for a client's oversized session).
      this.runtime.storeFailureLog.write(
        SessionLogEvents.SessionCommitRefused,
        `Session commit refused, nothing of it was applied (${error.getStatus()} ${error.code}): ${this.refusalText(error)}`,
      );
      return;
    }
    this.runtime.storeFailureLog.write(
      SessionLogEvents.SessionCommitFailed,
      `Session commit failed: ${this.runtime.failureText(error)}`,
    );
  }

  /**
   * The end-of-request commit: releases the lock, and applies the failure policy: with
   * `throwOnError` a failed commit becomes a 503, otherwise it is logged and the request goes on.
   * `releaseLock: false` keeps the lock for a later finish: the interceptor commits from Nest's
   * pipeline, but session-backed TempData is saved after it, and must still be under the lock.
   */
  async finish({ releaseLock = true }: { releaseLock?: boolean } = {}): Promise<void> {
    if (this.writtenCookie !== undefined) this.keepWrittenCookie();
    try {
      if (this.finishFailure !== undefined) throw this.finishFailure;
      if (this.commitsRunning > 0) {
        // The end of the request waits for a commit already running (the pipeline's and the one before the first
        // byte can both be under way: a route that wrote its response itself, under SessionStateInterceptor). If
        // the store failed it, that failure is the request's answer: a second try after it timed out answered
        // after twice the operation timeout (a probe).
        await this.committing;
        if (this.storeFailure !== undefined) throw this.storeFailure;
      }
      if (!this.nothingToCommit) await this.commit();
    } catch (error) {
      if (isStoreRefusal(error)) {
        // Refused by the store, which works: a 413 or 409 (whatever throwOnError says), not an outage.
        this.finishFailed(error);
        throw error;
      }
      // Logged where it was raised; the response went out without its cookie, no error reply can follow.
      if (error instanceof SessionResponseStartedError) return;
      this.finishFailed(error instanceof Error ? error : new Error(String(error)));
      if (this.runtime.store.throwOnError) {
        throw error instanceof SessionUnavailableError ? error : new SessionUnavailableError('commit', error);
      }
    } finally {
      if (releaseLock && this.lockToken !== undefined) await this.releaseLock();
    }
  }

  /** The response went out: later changes cannot be saved and are refused. */
  close(): void {
    this.closed = true;
  }

  private async releaseLock(): Promise<void> {
    const token = this.lockToken;
    const key = this.lockedKey;
    this.lockToken = undefined;
    this.stopLockRenewal();
    if (!token) return;
    if (key === undefined || !this.runtime.store.unlock) {
      this.runtime.lockReleases.released(token);
      return;
    }
    try {
      // Bounded: a lock store that never answers must not hold the response.
      await this.runtime.withIoTimeout(this.runtime.store.unlock(key, token));
      this.runtime.lockReleases.released(token);
    } catch (error) {
      this.unlockFailed(key, token, error);
    }
  }
}

/** `error` is `failure`, or was raised because of it (its `cause`, a few levels deep: an app's own wrapping). */
function causedBy(error: unknown, failure: Error): boolean {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current === failure) return true;
    current = current.cause;
  }
  return false;
}

/** The client went away while its request waited for the session lock: it stops waiting. */
class ClientWentAwayError extends Error {
  constructor() {
    super('the client went away while the request waited for the session lock');
  }
}

/** First wait between two tries for a held lock, in ms. */
const LOCK_FIRST_WAIT = 5;

/**
 * The wait after the `attempt`-th failed try for a held lock: 5 ms doubling up to `retryInterval`
 * (the longest wait), each drawn between half and all of that ("equal jitter"), so waiters neither
 * hammer the store nor retry in step with each other.
 */
export function lockBackoff(attempt: number, retryInterval: number): number {
  const ceiling = Math.min(retryInterval, LOCK_FIRST_WAIT * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
