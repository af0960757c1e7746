import type { Session } from 'nest-session-state';

/** The session key of the per-session counter (GET /counter, and `counter`/`increment` over GraphQL). */
export const COUNTER_KEY = 'counter';

/** The session's counter: 0 until it was first incremented. */
export function readCounter(session: Session): number {
  return session.getInt32(COUNTER_KEY) ?? 0;
}

/** Adds one to the session's counter and returns the new value. */
export function incrementCounter(session: Session): number {
  const count = readCounter(session) + 1;
  session.setInt32(COUNTER_KEY, count);
  return count;
}
