import { systemClock, type Clock } from '../../cache/clock.js';
import { MemoryEntryTable } from '../../cache/memory/memory-entry.table.js';
import type { SessionChanges, SessionData, SessionStore } from './session-store.interface.js';

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
    const data = this.table.get(sessionKey, idleTimeoutMs);
    return Promise.resolve(data && new Map(data));
  }

  commit(sessionKey: string, changes: SessionChanges, idleTimeoutMs: number): Promise<void> {
    const current = changes.cleared ? undefined : this.table.peek(sessionKey);
    const next: SessionData = new Map(current ?? []);
    for (const key of changes.removed) next.delete(key);
    for (const [key, value] of changes.set) next.set(key, value);
    if (next.size === 0) this.table.delete(sessionKey);
    else this.table.set(sessionKey, next, { slidingMs: idleTimeoutMs });
    return Promise.resolve();
  }

  refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    const data = this.table.peek(sessionKey);
    if (data) this.table.set(sessionKey, data, { slidingMs: idleTimeoutMs });
    return Promise.resolve();
  }

  remove(sessionKey: string): Promise<void> {
    this.table.delete(sessionKey);
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
