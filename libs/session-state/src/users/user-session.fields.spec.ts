import { SESSION_ID_FIELD } from '../session/session.js';
import type { SessionChanges, SessionData } from '../session/stores/session-store.interface.js';
import { guardedSessionId, SESSION_USER_FIELD } from './user-session.fields.js';

const bytes = (text: string) => new TextEncoder().encode(text);

/** The changes of a commit over `stored` (what the session holds after them). */
function changes(
  after: Record<string, string>,
  change: {
    set?: Record<string, string>;
    removed?: string[];
    cleared?: boolean;
    clearedBoundSessionId?: string;
    ofStoredSession?: boolean;
  },
): SessionChanges {
  const data: SessionData = new Map(Object.entries(after).map(([k, v]) => [k, bytes(v)]));
  return {
    cleared: change.cleared ?? false,
    clearedBoundSessionId: change.clearedBoundSessionId,
    set: new Map(Object.entries(change.set ?? {}).map(([k, v]) => [k, bytes(v)])),
    removed: new Set(change.removed ?? []),
    ofStoredSession: change.ofStoredSession,
    snapshot: () => new Map(data),
  };
}

describe('guardedSessionId: which commits apply only to the bound session they loaded', () => {
  const bound = { [SESSION_ID_FIELD]: 'id-1', [SESSION_USER_FIELD]: 'ada', cart: '1' };

  it('a delta of a bound session is guarded by its id; of an unbound one, not', () => {
    expect(guardedSessionId(changes(bound, { set: { cart: '1' } }))).toBe('id-1');
    expect(guardedSessionId(changes({ cart: '1' }, { set: { cart: '1' } }))).toBeUndefined();
  });

  it('a clear() of a bound session is guarded by the id it had, even with the marker set again', () => {
    const after = { user: 'ada' };
    expect(
      guardedSessionId(changes(after, { cleared: true, clearedBoundSessionId: 'id-1', set: after })),
    ).toBe('id-1');
    expect(guardedSessionId(changes(after, { cleared: true, set: after }))).toBeUndefined();
  });

  it('a commit that binds or unbinds a session the request loaded from the store is guarded by its id', () => {
    const stored = { ofStoredSession: true };
    expect(guardedSessionId(changes(bound, { ...stored, set: { [SESSION_USER_FIELD]: 'ada' } }))).toBe(
      'id-1',
    );
    const unbound = { [SESSION_ID_FIELD]: 'id-1', cart: '1' };
    expect(guardedSessionId(changes(unbound, { ...stored, removed: [SESSION_USER_FIELD] }))).toBe('id-1');
    // After a clear(): the id the cleared session had when it was bound; nothing when it was not.
    const cleared = { ...stored, cleared: true, set: { [SESSION_USER_FIELD]: 'ada' } };
    expect(guardedSessionId(changes(bound, { ...cleared, clearedBoundSessionId: 'id-0' }))).toBe('id-0');
    expect(guardedSessionId(changes(bound, cleared))).toBeUndefined();
  });

  it('a bind of a session nothing stored (new, or rewritten under a new key by regenerate()) is not guarded', () => {
    expect(guardedSessionId(changes(bound, { set: { [SESSION_USER_FIELD]: 'ada' } }))).toBeUndefined();
    expect(
      guardedSessionId(
        changes(bound, {
          cleared: true,
          clearedBoundSessionId: 'id-0',
          set: { [SESSION_USER_FIELD]: 'ada' },
        }),
      ),
    ).toBeUndefined();
  });

  it('a bind that creates the id (the stored session had none, so it was never listed) is not guarded', () => {
    expect(
      guardedSessionId(
        changes(bound, {
          ofStoredSession: true,
          set: { [SESSION_USER_FIELD]: 'ada', [SESSION_ID_FIELD]: 'id-1' },
        }),
      ),
    ).toBeUndefined();
  });

  it('the commit that creates the id is not guarded', () => {
    expect(guardedSessionId(changes(bound, { set: { [SESSION_ID_FIELD]: 'id-1' } }))).toBeUndefined();
  });
});
