import type { SessionData } from '../session/stores/session-store.interface.js';
import { storedSessionId } from './user-session.fields.js';
import {
  oldestFirst,
  type LiveUserSession,
  type UserSessionIndex,
  type UserSessionRecord,
} from './user-session-index.interface.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** What the memory index needs of the memory session store. */
export interface MemorySessionView {
  now(): number;
  /** The live session under `sessionKey` and when it expires, without sliding it. */
  inspect(sessionKey: string): { value: SessionData; expiresAt: number } | undefined;
  delete(sessionKey: string): void;
}

/** Other users' indexes examined per `add`: dead entries of users who never come back go too. */
const SWEEP_STEP = 4;

/**
 * The user index of {@link MemorySessionStore}: a map per user, checked against the store on every
 * access. JavaScript runs one call at a time, so each call is atomic. Bounded: entries of dead sessions
 * are dropped when their user's index is read, and each `add` sweeps a few other users' indexes, so
 * users who never return do not keep entries forever.
 */
@HiddenFromLogs()
export class MemoryUserSessionIndex implements UserSessionIndex {
  private readonly users = new Map<string, Map<string, UserSessionRecord>>();
  private cursor: Iterator<string> | undefined;

  constructor(private readonly store: MemorySessionView) {}

  /** Number of users with at least one entry (for tests of the bound). */
  get userCount(): number {
    return this.users.size;
  }

  /** Number of entries held for `userId`, dead ones included (for tests of the trimming). */
  entryCount(userId: string): number {
    return this.users.get(userId)?.size ?? 0;
  }

  add(
    userId: string,
    record: Omit<UserSessionRecord, 'createdAt'>,
    _idleTimeoutMs: number,
    _ioTimeoutMs?: number,
    replacesKey?: string,
  ): Promise<LiveUserSession[]> {
    let entries = this.users.get(userId);
    const recorded = entries?.get(record.sessionId)?.sessionKey;
    // A moved session's entry gone (revoked meanwhile): nothing is added (see UserSessionIndex.add).
    if (replacesKey !== undefined && recorded !== replacesKey && recorded !== record.sessionKey) {
      return Promise.resolve(this.live(userId));
    }
    if (!entries) this.users.set(userId, (entries = new Map<string, UserSessionRecord>()));
    entries.set(record.sessionId, { ...record, createdAt: this.store.now() });
    this.sweep(userId);
    return Promise.resolve(this.live(userId));
  }

  list(userId: string): Promise<LiveUserSession[]> {
    return Promise.resolve(this.live(userId));
  }

  revoke(userId: string, sessions: readonly UserSessionRecord[]): Promise<void> {
    for (const session of sessions) {
      const stored = this.store.inspect(session.sessionKey);
      if (stored && storedSessionId(stored.value) === session.sessionId) {
        this.store.delete(session.sessionKey);
      }
      this.drop(userId, session.sessionId, session.sessionKey);
    }
    return Promise.resolve();
  }

  remove(userId: string, sessionId: string, sessionKey?: string): Promise<void> {
    this.drop(userId, sessionId, sessionKey);
    return Promise.resolve();
  }

  private live(userId: string): LiveUserSession[] {
    const entries = this.users.get(userId);
    if (!entries) return [];
    const out: LiveUserSession[] = [];
    for (const record of entries.values()) {
      const stored = this.store.inspect(record.sessionKey);
      if (stored && storedSessionId(stored.value) === record.sessionId) {
        out.push({ ...record, expiresAt: stored.expiresAt });
      } else {
        entries.delete(record.sessionId);
      }
    }
    if (entries.size === 0) this.users.delete(userId);
    return out.sort(oldestFirst);
  }

  /** Drops the entry, only while it records `sessionKey` when one is given (see UserSessionIndex.remove). */
  private drop(userId: string, sessionId: string, sessionKey?: string): void {
    const entries = this.users.get(userId);
    if (sessionKey !== undefined && entries?.get(sessionId)?.sessionKey !== sessionKey) return;
    entries?.delete(sessionId);
    if (entries?.size === 0) this.users.delete(userId);
  }

  private sweep(except: string): void {
    for (let i = 0; i < SWEEP_STEP && this.users.size > 1; i++) {
      let next = this.cursor?.next();
      if (!next || next.done) {
        this.cursor = this.users.keys();
        next = this.cursor.next();
      }
      if (next.done) return;
      if (next.value !== except) this.live(next.value);
    }
  }
}
