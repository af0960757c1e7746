import { Logger } from '@nestjs/common';
import { clockOption, type Clock } from '../../cache/clock.js';
import { MemoryEntryTable, resolveBound } from '../../cache/memory/memory-entry.table.js';
import { guardedSessionId, storedSessionId } from '../../users/user-session.fields.js';
import { MemoryUserSessionIndex } from '../../users/memory-user-session.index.js';
import type { UserSessionIndex, UserSessionIndexSource } from '../../users/user-session-index.interface.js';
import { applyChanges, checkCommitLimits, isEmptySession } from './session-commit.limits.js';
import {
  SessionLimitExceededError,
  SessionLockLostError,
  SessionMovedError,
} from '../../errors/session.errors.js';
import { EndedSessionMarks, movedWithin } from './ended-session.marks.js';
import type {
  EndedSessionMark,
  SessionChanges,
  SessionCommitLimits,
  SessionData,
  SessionEnding,
  SessionStore,
} from './session-store.interface.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { describeOptionValue } from '../../options/option-names.check.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/** Default of {@link MemorySessionStoreOptions.maxSessions}. */
export const DEFAULT_MEMORY_MAX_SESSIONS = 100_000;
/** Default of {@link MemorySessionStoreOptions.sizeLimit}: 128 MiB. */
export const DEFAULT_MEMORY_SIZE_LIMIT = 128 * 1024 * 1024;

/**
 * Options of {@link MemorySessionStore}. Both bounds are on by default, so a flood of new visitors
 * (every cookieless request that stores a value makes a session) cannot grow the process without
 * limit: beyond either, the least recently used sessions are evicted (their visitors start new
 * sessions), and the first eviction is logged once naming the option to raise.
 *
 * @example
 * SessionModule.forRoot({ memory: { maxSessions: 500_000, sizeLimit: 512 * 1024 * 1024 } });
 * SessionModule.forRoot({ store: new MemorySessionStore({ maxSessions: Infinity }) }); // unbounded: not advised
 */
export interface MemorySessionStoreOptions {
  /**
   * Maximum number of sessions held. Default 100 000 (about 76 MB of heap for two-value sessions).
   * `Infinity`: no bound.
   */
  maxSessions?: number | undefined;
  /**
   * Maximum total bytes of all sessions (values and keys, plus a fixed per-session overhead).
   * Default 128 MiB. `Infinity`: no bound.
   */
  sizeLimit?: number | undefined;
  clock?: Clock | undefined;
}

/** Locks examined per lock set past the bound (see trimLocks). */
const LOCK_TRIM_STEP = 8;
/**
 * Released locks remembered at least, without `maxSessions` (see lockBound): the bound then follows the sessions held,
 * so sessions that come and go (an abandon, a regenerate's old key, an expiry) do not leave an entry each forever.
 */
const UNBOUNDED_LOCK_FLOOR = 1024;

/** What a session costs beyond its values: the table entry, the Map and the key string (~700 B measured). */
const SESSION_OVERHEAD = 512;
/** What one field costs beyond its key and value. */
const FIELD_OVERHEAD = 48;

function sizeOfField(key: string, value: Uint8Array): number {
  return key.length * 2 + value.byteLength + FIELD_OVERHEAD;
}

function sizeOfSession(data: SessionData): number {
  let size = SESSION_OVERHEAD;
  for (const [key, value] of data) size += sizeOfField(key, value);
  return size;
}

/**
 * The most a session within the module's limits counts for against `sizeLimit`: `maxSessionBytes` counts a key's
 * characters once, the store twice (UTF-16), and each field adds its overhead: at most `maxKeys` and the session id,
 * and no more fields than `maxSessionBytes` (a key has at least one character, which counts there).
 */
export function largestSessionSize(limits: Pick<SessionCommitLimits, 'maxKeys' | 'maxSessionBytes'>): number {
  const fields = Math.min(limits.maxKeys + 1, limits.maxSessionBytes);
  return SESSION_OVERHEAD + 2 * limits.maxSessionBytes + FIELD_OVERHEAD * fields;
}

/** A bound option of the store: a positive integer, or Infinity for none (undefined). */
function bound(name: string, value: number | undefined, fallback: number): number | undefined {
  return resolveBound(
    value,
    fallback,
    () =>
      `Memory session store option ${name} (SessionModule option memory.${name}) must be a positive integer, ` +
      `or Infinity for no bound (got ${describeOptionValue(value)}).`,
  );
}

/**
 * Sessions in this process's memory: the zero-configuration default. Commits apply deltas
 * atomically (JavaScript runs one commit at a time), so concurrent requests never lose each
 * other's keys. Not shared between instances.
 *
 * @example
 * const clock = new ManualClock();
 * SessionModule.forRoot({ store: new MemorySessionStore({ clock }) }); // expiry under test control
 */
@HiddenFromLogs()
export class MemorySessionStore implements SessionStore, UserSessionIndexSource {
  readonly writesDeltas = true;
  readonly throwOnError = true;
  readonly storeType = 'memory';
  readonly refusesJustMoved = true;

  /** True for this class itself only: a subclass may wrap something that can hang. */
  get inProcess(): boolean {
    return this.constructor === MemorySessionStore;
  }
  /** Always up: the sessions are in this process. */
  ping(): Promise<void> {
    return Promise.resolve();
  }
  private readonly table: MemoryEntryTable<SessionData>;
  /**
   * Session locks by key. A released lock stays, expired, under the last holder's token (bounded by
   * lockBound, oldest first): a commit carrying another token for that key is then known to have lost the
   * lock, while a key this store never locked (a subclass that takes its locks elsewhere) is not checked.
   */
  private readonly locks = new Map<string, { token: string; expiresAt: number }>();
  /** The lock table's bound; undefined without `maxSessions` (see lockBound). */
  private readonly maxLocks: number | undefined;
  private readonly ended: EndedSessionMarks;
  private readonly clock: Clock;
  private readonly logger = new Logger('MemorySessionStore');
  /** The bounds whose first eviction was logged. */
  private readonly warned = new Set<string>();
  /** The last expiration written (shared by entries: the table never changes one in place). */
  private expiration = { slidingMs: 0 };

  constructor(options: MemorySessionStoreOptions = {}) {
    this.clock = clockOption(
      options.clock,
      'Memory session store option clock (SessionModule option memory.clock)',
    );
    const maxSessions = bound('maxSessions', options.maxSessions, DEFAULT_MEMORY_MAX_SESSIONS);
    this.maxLocks = maxSessions;
    // As many marks as sessions at most: each is a session that left its key within the idle timeout.
    this.ended = new EndedSessionMarks(() => this.clock.now(), maxSessions);
    const sizeLimit = bound('sizeLimit', options.sizeLimit, DEFAULT_MEMORY_SIZE_LIMIT);
    this.table = new MemoryEntryTable<SessionData>({
      clock: this.clock,
      sizeLimit,
      maxCount: maxSessions,
      sizeOf: sizeOfSession,
      onEvict: (limit) =>
        this.evicted(limit === 'maxCount' ? 'maxSessions' : 'sizeLimit', maxSessions, sizeLimit),
    });
  }

  private evicted(option: 'maxSessions' | 'sizeLimit', maxSessions?: number, sizeLimit?: number): void {
    if (this.warned.has(option)) return;
    this.warned.add(option);
    const value = option === 'maxSessions' ? `${maxSessions} sessions` : `${sizeLimit} bytes`;
    logEvent(
      this.logger,
      SessionLogEvents.MemoryStoreFull,
      `Memory session store is full (memory.${option}: ${value}): the least recently used sessions are evicted ` +
        `from now on, and their visitors start new sessions. Raise memory.${option} if this is real traffic, or ` +
        'keep sessions in Redis (option redis). Logged once.',
    );
  }

  /** The bound on all sessions' bytes together; undefined: none. */
  get sizeLimit(): number | undefined {
    return this.table.sizeLimit;
  }

  /** Number of sessions held (expired ones may count until swept). */
  get count(): number {
    return this.table.count;
  }

  load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    return Promise.resolve(this.loadNow(sessionKey, idleTimeoutMs));
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async: a refused commit rejects, never throws
  async commit(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    this.commitNow(sessionKey, changes, idleTimeoutMs, limits);
  }

  /**
   * @internal {@link load} without a promise: the request path uses it for this class itself (see
   * `inProcess`), so loading and committing a session in memory costs no microtask.
   */
  loadNow(sessionKey: string, idleTimeoutMs: number): SessionData | undefined {
    const data = this.table.get(sessionKey, idleTimeoutMs);
    return data && new Map(data);
  }

  /** @internal {@link commit} without a promise. */
  commitNow(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): void {
    if (this.lockLost(sessionKey, changes.lockToken)) throw new SessionLockLostError();
    const stored = this.table.peek(sessionKey);
    // Moved or abandoned since this request loaded it: see SessionChanges.ofStoredSession.
    if (stored === undefined && changes.ofStoredSession) {
      const ending = this.ended.endingOf(sessionKey);
      if (ending === 'moved') throw new SessionMovedError();
      if (ending === 'abandoned') return;
    }
    // A session starting under a key just moved from: see SessionChanges.refuseIfMovedWithinMs.
    const within = changes.refuseIfMovedWithinMs;
    if (
      stored === undefined &&
      within !== undefined &&
      movedWithin(this.ended.markOf(sessionKey), idleTimeoutMs, within)
    )
      throw new SessionMovedError();
    // A bound session revoked (or expired) since this request loaded it stays gone: see guardedSessionId.
    const guard = guardedSessionId(changes);
    if (guard !== undefined && storedSessionId(stored) !== guard) return;
    // Against what is stored, not what the request loaded: concurrent requests cannot add up past a limit.
    if (limits) checkCommitLimits(stored, changes, limits);
    // A session larger than the whole store would evict every other, then itself: refused before anything changes.
    const sizeLimit = this.table.sizeLimit;
    if (sizeLimit !== undefined) this.checkFits(sessionKey, stored, changes, sizeLimit);
    // The stored map is never handed out (loads copy it), so it is updated in place.
    const next = applyChanges(stored, changes);
    // Empty once this delta is applied to what is stored now (not to what this request loaded).
    if (isEmptySession(next)) this.table.delete(sessionKey);
    else this.table.set(sessionKey, next, this.slidingBy(idleTimeoutMs));
  }

  /** Throws SessionLimitExceededError when `changes` would leave the session larger than `sizeLimit` and larger than it is. */
  private checkFits(
    sessionKey: string,
    stored: SessionData | undefined,
    changes: SessionChanges,
    sizeLimit: number,
  ) {
    const base = changes.cleared ? undefined : stored;
    const before = stored === undefined ? 0 : (this.table.sizeOfEntry(sessionKey) ?? sizeOfSession(stored));
    let size = base === undefined ? SESSION_OVERHEAD : before;
    for (const key of changes.removed) {
      const value = base?.get(key);
      if (value !== undefined) size -= sizeOfField(key, value);
    }
    for (const [key, value] of changes.set) {
      const previous = changes.removed.has(key) ? undefined : base?.get(key);
      size += previous === undefined ? sizeOfField(key, value) : value.byteLength - previous.byteLength;
    }
    if (size <= sizeLimit || size <= before) return;
    throw new SessionLimitExceededError(
      'sizeLimit',
      `This commit would grow the session to ${size} bytes as the memory store counts them, more than the store's ` +
        `sizeLimit of ${sizeLimit} bytes for all sessions together.`,
      "the memory store's sizeLimit (SessionModule option memory.sizeLimit)",
    );
  }

  private slidingBy(idleTimeoutMs: number): { slidingMs: number } {
    if (this.expiration.slidingMs !== idleTimeoutMs) this.expiration = { slidingMs: idleTimeoutMs };
    return this.expiration;
  }

  /** @internal {@link refresh} without a promise: slides the idle timeout without rewriting the entry. */
  refreshNow(sessionKey: string, idleTimeoutMs: number): void {
    this.table.get(sessionKey, idleTimeoutMs);
  }

  /** @internal {@link remove} without a promise. */
  removeNow(sessionKey: string): void {
    this.table.delete(sessionKey);
  }

  take(sessionKey: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    if (this.lockLost(sessionKey, mark?.lockToken)) return Promise.reject(new SessionLockLostError());
    const data = this.table.peek(sessionKey);
    // Moved by another request since this one loaded it: see EndedSessionMark.refuseIfMovedWithinMs.
    const within = mark?.refuseIfMovedWithinMs;
    if (
      data === undefined &&
      within !== undefined &&
      movedWithin(this.ended.markOf(sessionKey), mark!.keepMs, within)
    )
      return Promise.reject(new SessionMovedError());
    this.removeNow(sessionKey);
    if (mark) this.ended.mark(sessionKey, 'moved', mark.keepMs);
    return Promise.resolve(data && new Map(data));
  }

  endingOf(sessionKey: string): Promise<{ ending: SessionEnding; remainingMs: number } | undefined> {
    return Promise.resolve(this.ended.markOf(sessionKey));
  }

  refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    this.refreshNow(sessionKey, idleTimeoutMs);
    return Promise.resolve();
  }

  remove(sessionKey: string, mark?: EndedSessionMark): Promise<void> {
    if (this.lockLost(sessionKey, mark?.lockToken)) return Promise.reject(new SessionLockLostError());
    this.removeNow(sessionKey);
    if (mark) this.ended.mark(sessionKey, 'abandoned', mark.keepMs);
    return Promise.resolve();
  }

  private users: UserSessionIndex | undefined;

  /** The index of sessions bound to users (UserSessions), over this store's table. */
  userSessionIndex(): UserSessionIndex {
    return (this.users ??= new MemoryUserSessionIndex({
      now: () => this.clock.now(),
      inspect: (key) => this.table.inspect(key),
      delete: (key) => void this.table.delete(key),
    }));
  }

  tryLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const held = this.locks.get(sessionKey);
    if (held && held.expiresAt > now && held.token !== token) return Promise.resolve(false);
    this.setLock(sessionKey, token, now + ttlMs);
    return Promise.resolve(true);
  }

  renewLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    if (!this.holdsLock(sessionKey, token)) return Promise.resolve(false);
    this.setLock(sessionKey, token, this.clock.now() + ttlMs);
    return Promise.resolve(true);
  }

  /**
   * The request's lock expired (and may have been taken) since it read the session: see SessionChanges.lockToken
   * and EndedSessionMark.lockToken. Only a key this store locked is checked (see `locks`).
   */
  private lockLost(sessionKey: string, token: string | undefined): boolean {
    return token !== undefined && this.locks.has(sessionKey) && !this.holdsLock(sessionKey, token);
  }

  private holdsLock(sessionKey: string, token: string): boolean {
    const held = this.locks.get(sessionKey);
    return held !== undefined && held.token === token && held.expiresAt > this.clock.now();
  }

  unlock(sessionKey: string, token: string): Promise<void> {
    // Kept, expired: see `locks`.
    if (this.locks.get(sessionKey)?.token === token) this.setLock(sessionKey, token, 0);
    return Promise.resolve();
  }

  /** Sets a key's lock, most recent last; past the bound the least recently set released ones go (trimLocks). */
  private setLock(sessionKey: string, token: string, expiresAt: number): void {
    this.locks.delete(sessionKey);
    this.locks.set(sessionKey, { token, expiresAt });
    if (this.locks.size > this.lockBound()) this.trimLocks();
  }

  /** `maxSessions`; without it twice the sessions held (at least UNBOUNDED_LOCK_FLOOR): never the sessions ever seen. */
  private lockBound(): number {
    return this.maxLocks ?? Math.max(UNBOUNDED_LOCK_FLOOR, 2 * this.table.count);
  }

  /**
   * Drops released or expired locks from the front (the least recently set), a few per call. A held lock is never
   * dropped: its key would look never locked, and the next request would take it while its holder runs (a probe: more
   * requests holding locks at once than `maxSessions`). One met at the front goes to the back, so the released ones
   * behind it are reached. While more than the bound are held, the map holds them all.
   */
  private trimLocks(): void {
    const now = this.clock.now();
    const bound = this.lockBound();
    for (let examined = 0; examined < LOCK_TRIM_STEP && this.locks.size > bound; examined++) {
      const [key, lock] = this.locks.entries().next().value!;
      this.locks.delete(key);
      if (lock.expiresAt > now) this.locks.set(key, lock);
    }
  }
}
