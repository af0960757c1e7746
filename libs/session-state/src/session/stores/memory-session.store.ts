import { systemClock, type Clock } from '../../cache/clock.js';
import { MemoryEntryTable } from '../../cache/memory/memory-entry.table.js';
import { checkCommitLimits, isEmptySession } from './session-commit.limits.js';
import type {
  SessionChanges,
  SessionCommitLimits,
  SessionData,
  SessionStore,
} from './session-store.interface.js';

/**
 * Options of {@link MemorySessionStore}.
 *
 * @example
 * SessionModule.forRoot({ store: new MemorySessionStore({ sizeLimit: 256 * 1024 * 1024 }) });
 */
export interface MemorySessionStoreOptions {
  /** Maximum total bytes of all sessions; least recently used sessions are evicted. */
  sizeLimit?: number;
  clock?: Clock;
}

function sizeOfSession(data: SessionData): number {
  let size = 0;
  for (const [key, value] of data) size += key.length * 2 + value.byteLength + 48;
  return size;
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
export class MemorySessionStore implements SessionStore {
  readonly writesDeltas = true;
  readonly throwOnError = true;

  /** True for this class itself only: a subclass may wrap something that can hang. */
  get inProcess(): boolean {
    return this.constructor === MemorySessionStore;
  }
  private readonly table: MemoryEntryTable<SessionData>;
  private readonly locks = new Map<string, { token: string; expiresAt: number }>();
  private readonly clock: Clock;
  /** The last expiration written (shared by entries: the table never changes one in place). */
  private expiration = { slidingMs: 0 };

  constructor(options: MemorySessionStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.table = new MemoryEntryTable<SessionData>({
      clock: this.clock,
      sizeLimit: options.sizeLimit,
      sizeOf: sizeOfSession,
    });
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
    const stored = this.table.peek(sessionKey);
    // Against what is stored, not what the request loaded: concurrent requests cannot add up past a limit.
    if (limits) checkCommitLimits(stored, changes, limits);
    // The stored map is never handed out (loads copy it), so it is updated in place.
    const next: SessionData = (!changes.cleared && stored) || new Map<string, Uint8Array>();
    for (const key of changes.removed) next.delete(key);
    for (const [key, value] of changes.set) next.set(key, value);
    // Empty once this delta is applied to what is stored now (not to what this request loaded).
    if (isEmptySession(next)) this.table.delete(sessionKey);
    else this.table.set(sessionKey, next, this.slidingBy(idleTimeoutMs));
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

  refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    this.refreshNow(sessionKey, idleTimeoutMs);
    return Promise.resolve();
  }

  remove(sessionKey: string): Promise<void> {
    this.removeNow(sessionKey);
    return Promise.resolve();
  }

  tryLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const held = this.locks.get(sessionKey);
    if (held && held.expiresAt > now) return Promise.resolve(false);
    this.locks.set(sessionKey, { token, expiresAt: now + ttlMs });
    return Promise.resolve(true);
  }

  unlock(sessionKey: string, token: string): Promise<void> {
    if (this.locks.get(sessionKey)?.token === token) this.locks.delete(sessionKey);
    return Promise.resolve();
  }
}
