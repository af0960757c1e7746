import { Logger, type LoggerService } from '@nestjs/common';
import { ManualClock } from '../../cache/clock.js';
import {
  SessionLimitExceededError,
  SessionLockLostError,
  SessionMovedError,
} from '../../errors/session.errors.js';
import { DEFAULT_MEMORY_MAX_SESSIONS, MemorySessionStore } from './memory-session.store.js';
import type { SessionChanges } from './session-store.interface.js';

const IDLE = 20 * 60_000;
const setting = (field: string, value: Uint8Array): SessionChanges => ({
  cleared: false,
  set: new Map([[field, value]]),
  removed: new Set(),
  snapshot: () => new Map([[field, value]]),
});
const small = setting('count', new Uint8Array([1]));

/** Captures Nest's static logger for the duration of `run`. */
function warnings(run: () => void): string[] {
  const lines: string[] = [];
  const capture: LoggerService = {
    log: () => undefined,
    warn: (m: unknown) => lines.push(String(m)),
    error: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
  Logger.overrideLogger(capture);
  try {
    run();
  } finally {
    Logger.overrideLogger(false);
    Logger.overrideLogger(new Logger());
  }
  return lines;
}

describe('MemorySessionStore bounds', () => {
  it('keeps every held lock exclusive when more are held at once than maxSessions, and still drops released ones', async () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock, maxSessions: 2 });
    for (let i = 0; i < 6; i++) expect(await store.tryLock(`s${i}`, `t${i}`, 30_000)).toBe(true);
    for (let i = 0; i < 6; i++) expect(await store.tryLock(`s${i}`, 'intruder', 30_000)).toBe(false);
    store.commitNow('s0', { ...small, lockToken: 't0' }, IDLE); // its holder's commit still holds the lock
    // Released, they make room again: a released lock is kept expired only while the bound allows.
    for (let i = 0; i < 6; i++) await store.unlock(`s${i}`, `t${i}`);
    for (let i = 6; i < 30; i++) {
      expect(await store.tryLock(`s${i}`, `t${i}`, 30_000)).toBe(true);
      await store.unlock(`s${i}`, `t${i}`);
    }
    expect((store as unknown as { locks: Map<string, unknown> }).locks.size).toBeLessThanOrEqual(2);
  });

  it('trims released locks behind held ones at the front: the bound comes back while fewer are held', async () => {
    const store = new MemorySessionStore({ clock: new ManualClock(), maxSessions: 100 });
    for (let i = 0; i < 20; i++) await store.tryLock(`held${i}`, `h${i}`, 30_000);
    for (let i = 0; i < 2000; i++) {
      await store.tryLock(`s${i}`, `t${i}`, 30_000);
      await store.unlock(`s${i}`, `t${i}`);
    }
    expect((store as unknown as { locks: Map<string, unknown> }).locks.size).toBeLessThanOrEqual(101);
    for (let i = 0; i < 20; i++) expect(await store.tryLock(`held${i}`, 'intruder', 30_000)).toBe(false);
  });

  it('refuses a commit that would leave one session larger than the whole sizeLimit (413 naming memory.sizeLimit), changing nothing', () => {
    const store = new MemorySessionStore({ clock: new ManualClock(), sizeLimit: 4000 });
    store.commitNow('other', small, IDLE);
    store.commitNow('grows', setting('a', new Uint8Array(1000)), IDLE);
    let refused: unknown;
    try {
      store.commitNow('grows', setting('b', new Uint8Array(3000)), IDLE);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(SessionLimitExceededError);
    expect((refused as SessionLimitExceededError).limit).toBe('sizeLimit');
    expect((refused as Error).message).toMatch(
      /This commit would grow the session to \d+ bytes as the memory store counts them, more than the store's sizeLimit of 4000 bytes .*raise the memory store's sizeLimit \(SessionModule option memory\.sizeLimit\)\./,
    );
    expect([...(store.loadNow('grows', IDLE)?.keys() ?? [])]).toEqual(['a']);
    expect(store.loadNow('other', IDLE)?.get('count')).toEqual(new Uint8Array([1]));
    // A new session that large is refused too, and a commit that leaves the session no larger always passes.
    expect(() => store.commitNow('new', setting('c', new Uint8Array(5000)), IDLE)).toThrow(
      SessionLimitExceededError,
    );
    expect(store.loadNow('new', IDLE)).toBeUndefined();
    store.commitNow('grows', setting('a', new Uint8Array(900)), IDLE);
    expect(store.loadNow('grows', IDLE)?.get('a')?.byteLength).toBe(900);
  });

  it('is bounded with no options: the 100 001st session evicts the least recently used', () => {
    const store = new MemorySessionStore({ clock: new ManualClock() });
    const lines = warnings(() => {
      for (let i = 0; i <= DEFAULT_MEMORY_MAX_SESSIONS; i++) store.commitNow(`s${i}`, small, IDLE);
    });
    expect(DEFAULT_MEMORY_MAX_SESSIONS).toBe(100_000);
    expect(store.count).toBe(DEFAULT_MEMORY_MAX_SESSIONS);
    expect(store.loadNow('s0', IDLE)).toBeUndefined(); // the oldest went
    expect(store.loadNow(`s${DEFAULT_MEMORY_MAX_SESSIONS}`, IDLE)).toBeDefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/memory\.maxSessions: 100000 sessions.*Raise memory\.maxSessions/);
  });

  it('keeps the count at maxSessions, evicts the least recently used (a read counts as use), logs once', () => {
    const store = new MemorySessionStore({ maxSessions: 3, clock: new ManualClock() });
    const lines = warnings(() => {
      for (const key of ['a', 'b', 'c']) store.commitNow(key, small, IDLE);
      store.loadNow('a', IDLE); // a is now the most recently used: b is the least
      store.commitNow('d', small, IDLE);
      expect(store.count).toBe(3);
      expect(store.loadNow('b', IDLE)).toBeUndefined();
      for (const key of ['a', 'c', 'd']) expect(store.loadNow(key, IDLE)).toBeDefined();
      for (let i = 0; i < 50; i++) store.commitNow(`n${i}`, small, IDLE);
      expect(store.count).toBe(3);
    });
    expect(lines).toHaveLength(1);
  });

  it('keeps the bytes within sizeLimit, counting a per-session overhead; names sizeLimit when it is the bound hit', () => {
    const store = new MemorySessionStore({ sizeLimit: 10_000, clock: new ManualClock() });
    const lines = warnings(() => {
      // 1 KB values: ~1.6 KB each with the overhead, so at most 6 fit in 10 000 bytes.
      for (let i = 0; i < 20; i++) store.commitNow(`s${i}`, setting('v', new Uint8Array(1000)), IDLE);
    });
    expect(store.count).toBeGreaterThanOrEqual(5);
    expect(store.count).toBeLessThanOrEqual(6);
    expect(store.loadNow('s19', IDLE)).toBeDefined();
    expect(store.loadNow('s0', IDLE)).toBeUndefined();
    expect(lines).toEqual([expect.stringMatching(/memory\.sizeLimit: 10000 bytes/)]);
  });

  it('an expired session pushed out by the bound is not reported as an eviction', () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ maxSessions: 2, clock });
    const lines = warnings(() => {
      store.commitNow('a', small, 1000);
      store.commitNow('b', small, 1000);
      clock.advance(2000);
      store.commitNow('c', small, IDLE);
    });
    expect(lines).toEqual([]);
    expect(store.count).toBeLessThanOrEqual(2);
  });

  it('Infinity lifts a bound; anything else but a positive integer is refused naming the option', () => {
    const store = new MemorySessionStore({ maxSessions: Infinity, clock: new ManualClock() });
    for (let i = 0; i < DEFAULT_MEMORY_MAX_SESSIONS + 10; i++) store.commitNow(`s${i}`, small, IDLE);
    expect(store.count).toBe(DEFAULT_MEMORY_MAX_SESSIONS + 10);
    expect(() => new MemorySessionStore({ maxSessions: 0 })).toThrow(/memory\.maxSessions.*positive integer/);
    expect(() => new MemorySessionStore({ sizeLimit: 1.5 })).toThrow(/memory\.sizeLimit.*positive integer/);
  });
});

describe('MemorySessionStore lock', () => {
  it('is reentrant for its token (a retry finds its own lock), refuses other tokens, and unlocks only its own', async () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock });
    expect(await store.tryLock('s', 'mine', 1000)).toBe(true);
    expect(await store.tryLock('s', 'mine', 1000)).toBe(true);
    expect(await store.tryLock('s', 'theirs', 1000)).toBe(false);
    await store.unlock('s', 'theirs');
    expect(await store.tryLock('s', 'theirs', 1000)).toBe(false);
    await store.unlock('s', 'mine');
    expect(await store.tryLock('s', 'theirs', 1000)).toBe(true);
    clock.advance(1000);
    expect(await store.tryLock('s', 'mine', 1000)).toBe(true); // expired
  });

  it('fences commits on the locks it took: refused once another token took or released the lock; a key it never locked is not checked; the released locks it keeps are bounded by maxSessions', async () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock, maxSessions: 2 });
    const fenced = (token: string): SessionChanges => ({ ...small, lockToken: token });
    expect(await store.tryLock('a', 'first', 1000)).toBe(true);
    clock.advance(1000); // expired: another request takes it, commits, releases
    expect(await store.renewLock('a', 'first', 1000)).toBe(false); // never taken back by renewal
    expect(await store.tryLock('a', 'second', 1000)).toBe(true);
    await store.commit('a', fenced('second'), IDLE);
    await store.unlock('a', 'second');
    await expect(store.commit('a', fenced('first'), IDLE)).rejects.toThrow(SessionLockLostError);
    await expect(store.commit('a', fenced('second'), IDLE)).rejects.toThrow(SessionLockLostError); // released
    await store.commit('never-locked', fenced('elsewhere'), IDLE); // a subclass's own lock: not checked
    expect(await store.load('never-locked', IDLE)).toBeDefined();
    // Two more keys locked and released: the oldest kept lock ('a') goes, and with it the check.
    for (const key of ['b', 'c']) {
      await store.tryLock(key, 't', 1000);
      await store.unlock(key, 't');
    }
    await store.commit('a', fenced('first'), IDLE);
  });
});

describe('MemorySessionStore take and remove under session.lock (EndedSessionMark.lockToken)', () => {
  it('refuses both once the lock expired, or another token took it: nothing deleted, no mark left; the holder applies', async () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock });
    const mark = (lockToken: string) => ({ keepMs: IDLE, lockToken });
    const loaded: SessionChanges = { ...small, ofStoredSession: true };
    for (const key of ['moved', 'abandoned']) {
      store.commitNow(key, small, IDLE);
      expect(await store.tryLock(key, 'stale', 1000)).toBe(true);
    }
    clock.advance(1000); // expired: nobody took it over yet
    await expect(store.take('moved', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    await expect(store.remove('abandoned', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    for (const key of ['moved', 'abandoned']) expect(await store.tryLock(key, 'live', 1000)).toBe(true);
    await expect(store.take('moved', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    await expect(store.remove('abandoned', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    expect(store.loadNow('moved', IDLE)).toBeDefined();
    expect(store.loadNow('abandoned', IDLE)).toBeDefined();
    // No mark either: with the session gone, a late commit of a request that loaded it still applies.
    for (const key of ['moved', 'abandoned']) {
      await store.remove(key);
      store.commitNow(key, loaded, IDLE);
      expect(store.loadNow(key, IDLE)).toBeDefined();
    }

    expect((await store.take('moved', mark('live')))?.get('count')).toEqual(new Uint8Array([1]));
    await store.remove('abandoned', mark('live'));
    expect(() => store.commitNow('moved', loaded, IDLE)).toThrow(SessionMovedError); // marked this time
    store.commitNow('abandoned', loaded, IDLE);
    expect(store.loadNow('moved', IDLE)).toBeUndefined();
    expect(store.loadNow('abandoned', IDLE)).toBeUndefined();
  });

  it('does not check a key it never locked (a subclass that takes its locks elsewhere)', async () => {
    const store = new MemorySessionStore({ clock: new ManualClock() });
    store.commitNow('elsewhere', small, IDLE);
    expect(await store.take('elsewhere', { keepMs: IDLE, lockToken: 'kept-elsewhere' })).toBeDefined();
    store.commitNow('elsewhere', small, IDLE);
    await store.remove('elsewhere', { keepMs: IDLE, lockToken: 'kept-elsewhere' });
    expect(store.loadNow('elsewhere', IDLE)).toBeUndefined();
  });
});

describe('MemorySessionStore ended marks (regenerate, abandon)', () => {
  const loaded: SessionChanges = { ...small, ofStoredSession: true };

  it('a late commit of a loaded session is refused after take (moved), dropped after remove (abandoned), until the mark expires', async () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock });
    store.commitNow('moved', small, IDLE);
    await store.take('moved', { keepMs: IDLE });
    expect(() => store.commitNow('moved', loaded, IDLE)).toThrow(SessionMovedError);
    await expect(store.commit('moved', loaded, IDLE)).rejects.toBeInstanceOf(SessionMovedError);
    expect(store.loadNow('moved', IDLE)).toBeUndefined();

    store.commitNow('abandoned', small, IDLE);
    await store.remove('abandoned', { keepMs: IDLE });
    store.commitNow('abandoned', loaded, IDLE);
    expect(store.loadNow('abandoned', IDLE)).toBeUndefined();

    // A request that loaded nothing starts a session under the key; after the mark, loaded ones apply too.
    store.commitNow('moved', small, IDLE);
    expect(store.loadNow('moved', IDLE)).toBeDefined();
    clock.advance(IDLE);
    store.commitNow('abandoned', loaded, IDLE);
    expect(store.loadNow('abandoned', IDLE)).toBeDefined();
  });

  it('without a mark (a delta emptied the session, or it expired) a late commit applies; take and remove without one leave none', async () => {
    const store = new MemorySessionStore({ clock: new ManualClock() });
    store.commitNow('plain', loaded, IDLE);
    expect(store.loadNow('plain', IDLE)).toBeDefined();
    await store.take('plain');
    store.commitNow('plain', loaded, IDLE);
    await store.remove('plain');
    store.commitNow('plain', loaded, IDLE);
    expect(store.loadNow('plain', IDLE)).toBeDefined();
  });
});
