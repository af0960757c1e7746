import type { SessionChanges, SessionData } from './stores/session-store.interface.js';

/** Records what a request changed in its session, so a commit can write only that. */
export class SessionChangeTracker implements SessionChanges {
  cleared = false;
  clearedBoundSessionId: string | undefined;
  set = new Map<string, Uint8Array>();
  removed = new Set<string>();
  /** Set by the lifecycle before each commit: see `SessionChanges.ofStoredSession`. */
  ofStoredSession = false;
  /** Set by the lifecycle before each commit: see `SessionChanges.lockToken`. */
  lockToken: string | undefined;
  /** Set by the lifecycle before each commit: see `SessionChanges.refuseIfMovedWithinMs`. */
  refuseIfMovedWithinMs: number | undefined;

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

  /** `boundSessionId`: the id of the bound session cleared (see `SessionChanges.clearedBoundSessionId`). */
  recordClear(boundSessionId?: string): void {
    // A second clear in the request keeps the guard of the first: the session it loaded.
    if (!this.cleared) this.clearedBoundSessionId = boundSessionId;
    this.cleared = true;
    this.set.clear();
    this.removed.clear();
  }

  snapshot(): SessionData {
    return new Map(this.current());
  }

  valueOfField(field: string): Uint8Array | undefined {
    return this.current().get(field);
  }

  /**
   * Hands the recorded changes to a commit and starts recording afresh, so values set while the
   * commit is in flight belong to the next commit.
   */
  take(): SessionChanges {
    const current = this.current;
    // Hand over the collections themselves (no copies): this tracker starts new, empty ones.
    const taken: SessionChanges = {
      cleared: this.cleared,
      clearedBoundSessionId: this.clearedBoundSessionId,
      set: this.set,
      removed: this.removed,
      ofStoredSession: this.ofStoredSession,
      lockToken: this.lockToken,
      refuseIfMovedWithinMs: this.refuseIfMovedWithinMs,
      snapshot: () => new Map(current()),
      valueOfField: (field) => current().get(field),
    };
    this.cleared = false;
    this.clearedBoundSessionId = undefined;
    this.set = new Map();
    this.removed = new Set();
    return taken;
  }

  /**
   * The recorded changes as they are now, kept apart from this tracker: what to {@link restore} when a commit that
   * changes them further (a move's {@link rewriteAll}) fails.
   */
  copy(): SessionChanges {
    const current = this.current;
    return {
      cleared: this.cleared,
      clearedBoundSessionId: this.clearedBoundSessionId,
      set: new Map(this.set),
      removed: new Set(this.removed),
      snapshot: () => new Map(current()),
      valueOfField: (field) => current().get(field),
    };
  }

  /** Puts changes back after their commit failed; newer changes win over them. */
  restore(changes: SessionChanges): void {
    if (changes.cleared && !this.cleared) {
      const newer = new Map(this.set);
      const removedLater = new Set(this.removed);
      this.recordClear(changes.clearedBoundSessionId);
      for (const [key, value] of changes.set) if (!removedLater.has(key)) this.set.set(key, value);
      for (const [key, value] of newer) this.set.set(key, value);
      return;
    }
    for (const key of changes.removed) if (!this.set.has(key)) this.removed.add(key);
    for (const [key, value] of changes.set) {
      if (!this.set.has(key) && !this.removed.has(key)) this.set.set(key, value);
    }
  }

  /** Forgets the recorded changes. */
  reset(): void {
    this.cleared = false;
    this.clearedBoundSessionId = undefined;
    this.set.clear();
    this.removed.clear();
  }

  /** Marks every current value as set (for a write under a new key). */
  rewriteAll(): void {
    this.cleared = false; // a rewrite under a new key: nothing stored there to guard against
    this.recordClear();
    for (const [key, value] of this.current()) this.set.set(key, value);
  }
}
