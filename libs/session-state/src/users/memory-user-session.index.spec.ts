import { ManualClock } from '../cache/clock.js';
import { MemorySessionStore } from '../session/stores/memory-session.store.js';
import { SESSION_ID_FIELD } from '../session/session.js';
import type { SessionChanges } from '../session/stores/session-store.interface.js';
import type { MemoryUserSessionIndex } from './memory-user-session.index.js';
import { SESSION_USER_FIELD } from './user-session.fields.js';

const encode = (text: string) => new TextEncoder().encode(text);
const IDLE = 60_000;

function changes(
  set: Record<string, string>,
  cleared = false,
  loaded: Record<string, string> = {},
): SessionChanges {
  const map = new Map(Object.entries(set).map(([k, v]) => [k, encode(v)]));
  return {
    cleared,
    set: map,
    removed: new Set(),
    snapshot: () => new Map([...Object.entries(loaded).map(([k, v]) => [k, encode(v)] as const), ...map]),
  };
}

/** Stores a bound session `id` under `key`, as a sign-in's commit does. */
function signIn(store: MemorySessionStore, key: string, id: string, user: string): void {
  store.commitNow(key, changes({ [SESSION_ID_FIELD]: id, [SESSION_USER_FIELD]: user, user }, true), IDLE);
}

describe('MemoryUserSessionIndex', () => {
  let clock: ManualClock;
  let store: MemorySessionStore;
  let index: MemoryUserSessionIndex;

  beforeEach(() => {
    clock = new ManualClock(1_000_000);
    store = new MemorySessionStore({ clock });
    index = store.userSessionIndex() as MemoryUserSessionIndex;
  });

  it('is one index per store', () => {
    expect(store.userSessionIndex()).toBe(index);
  });

  it('sweeps the dead entries of users who never come back when others sign in', async () => {
    for (let i = 0; i < 20; i++) {
      signIn(store, `key-${i}`, `id-${i}`, `gone-${i}`);
      await index.add(`gone-${i}`, { sessionId: `id-${i}`, sessionKey: `key-${i}`, metadata: {} }, IDLE);
    }
    expect(index.userCount).toBe(20);
    clock.advance(IDLE + 1);
    for (let i = 0; i < 10; i++) {
      signIn(store, `new-${i}`, `nid-${i}`, 'active');
      await index.add('active', { sessionId: `nid-${i}`, sessionKey: `new-${i}`, metadata: {} }, IDLE);
    }
    expect(index.userCount).toBe(1); // 10 adds x 4 examined: every gone user was met and dropped
  });

  it('revokes only while the key holds the revoked session (a key reused after expiry is left alone)', async () => {
    signIn(store, 'k', 'first', 'u');
    const [entry] = await index.add('u', { sessionId: 'first', sessionKey: 'k', metadata: {} }, IDLE);
    clock.advance(IDLE + 1);
    signIn(store, 'k', 'second', 'other'); // the browser's cookie key, now another session
    await index.revoke('u', [entry]);
    expect(store.loadNow('k', IDLE)?.get(SESSION_ID_FIELD)).toEqual(encode('second'));
  });

  it('a guarded commit applies to the session it loaded only', () => {
    signIn(store, 'k', 'bound', 'u');
    const loaded = { [SESSION_ID_FIELD]: 'bound', [SESSION_USER_FIELD]: 'u' };
    store.commitNow('k', changes({ late: '1' }, false, loaded), IDLE);
    expect(store.loadNow('k', IDLE)?.has('late')).toBe(true);
    store.removeNow('k'); // revoked
    store.commitNow('k', changes({ later: '1' }, false, loaded), IDLE);
    expect(store.loadNow('k', IDLE)).toBeUndefined();
    // An unbound session's commit is not guarded: it starts a new session as before.
    store.commitNow('k', changes({ anon: '1' }, false, { [SESSION_ID_FIELD]: 'x' }), IDLE);
    expect(store.loadNow('k', IDLE)?.has('anon')).toBe(true);
  });
});
