import type { SessionChanges, SessionData } from './stores/session-store.interface.js';

/** Records what a request changed in its session, so a commit can write only that. */
export class SessionChangeTracker implements SessionChanges {
  cleared = false;
  readonly set = new Map<string, Uint8Array>();
  readonly removed = new Set<string>();

  constructor(private readonly current: () => SessionData) {}

  get isEmpty(): boolean {
    return !this.cleared && this.set.size === 0 && this.removed.size === 0;
  }

  recordSet(key: string, value: Uint8Array): void {
    this.set.set(key, value);
    this.removed.delete(key);
  }

  recordRemove(key: string): void {
    this.set.delete(key);
    this.removed.add(key);
  }

  recordClear(): void {
    this.cleared = true;
    this.set.clear();
    this.removed.clear();
  }

  snapshot(): SessionData {
    return new Map(this.current());
  }

  /** Forgets the recorded changes (after a successful commit). */
  reset(): void {
    this.cleared = false;
    this.set.clear();
    this.removed.clear();
  }

  /** Marks every current value as set (for a write under a new key). */
  rewriteAll(): void {
    this.recordClear();
    for (const [key, value] of this.current()) this.set.set(key, value);
  }
}
