import type { SessionEnding } from './session-store.interface.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/** Marks swept of expired ones once there are this many (the bound doubles with the live ones). */
const FIRST_SWEEP = 1024;

/**
 * The ended-session marks (`EndedSessionMark`) of a store in this process: which keys lost their session to a
 * move or an abandon, until when. Expired marks are swept as marks are added, so the table holds the sign-ins
 * and sign-outs of the last idle timeout, and never more than `maxMarks` (the oldest go first).
 */
@HiddenFromLogs()
export class EndedSessionMarks {
  private readonly marks = new Map<string, { readonly ending: SessionEnding; readonly until: number }>();
  private sweepAt = FIRST_SWEEP;

  constructor(
    private readonly now: () => number,
    private readonly maxMarks = Number.POSITIVE_INFINITY,
  ) {}

  /** Marks held, expired ones not yet swept included. */
  get size(): number {
    return this.marks.size;
  }

  mark(key: string, ending: SessionEnding, keepMs: number): void {
    if (this.marks.size >= this.sweepAt) this.sweep();
    this.marks.delete(key); // set again at the end: the Map's order is the marks' age
    this.marks.set(key, { ending, until: this.now() + keepMs });
    if (this.marks.size > this.maxMarks) this.marks.delete(this.marks.keys().next().value!);
  }

  /** How the session of `key` left it, and for how much longer the mark is kept (ms), while it lasts. */
  markOf(key: string): { readonly ending: SessionEnding; readonly remainingMs: number } | undefined {
    const mark = this.marks.get(key);
    if (mark === undefined) return undefined;
    const remainingMs = mark.until - this.now();
    if (remainingMs > 0) return { ending: mark.ending, remainingMs };
    this.marks.delete(key);
    return undefined;
  }

  /** How the session of `key` left it, while the mark lasts. */
  endingOf(key: string): SessionEnding | undefined {
    return this.markOf(key)?.ending;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, mark] of this.marks) if (mark.until <= now) this.marks.delete(key);
    this.sweepAt = Math.max(FIRST_SWEEP, this.marks.size * 2);
  }
}

/**
 * Whether `mark` says `regenerate()` moved the key's session at most `withinMs` ago (see
 * SessionChanges.refuseIfMovedWithinMs): a mark is kept for the idle timeout, so what has run of it is how long
 * ago the move was. A mark kept longer than `idleTimeoutMs` (another instance's, during a change of it) is not
 * known, so not judged.
 */
export function movedWithin(
  mark: { readonly ending: SessionEnding; readonly remainingMs: number } | undefined,
  idleTimeoutMs: number,
  withinMs: number,
): boolean {
  return (
    mark?.ending === 'moved' &&
    mark.remainingMs <= idleTimeoutMs &&
    idleTimeoutMs - mark.remainingMs <= withinMs
  );
}
