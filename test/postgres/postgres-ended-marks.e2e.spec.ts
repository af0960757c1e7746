/**
 * Ended-session marks on the PostgreSQL store, statement by statement against a real database: `take` (after
 * `regenerate()`) and `remove` (after `abandon()`) with a mark leave a row of `<table>_ended` in the statement that
 * deletes the session, and a late commit of a request that had loaded the session (`ofStoredSession`) applies
 * nothing: SessionMovedError after a move, resolved after an abandon. The fast paths (the single UPDATE and the
 * batched one) never re-create the row; a mark expires with the app's clock, a session made afresh under the key
 * deletes it, and prune deletes expired ones.
 */
import pg from 'pg';
import { ManualClock, SessionMovedError, type SessionChanges } from 'nest-session-state';
import {
  PostgresConnection,
  resolvePostgresOptions,
  type PostgresSessionStore,
} from 'nest-session-state/postgres';
import { countedStore, type CountedStore, type TestDatabase } from '../support/postgres/index.js';

const IDLE = 60_000;
const KEEP = { keepMs: IDLE };

/** A commit of `entries` set; `loaded`: the request loaded the session from the store (ofStoredSession). */
function commitOf(
  entries: Record<string, string>,
  loaded: boolean,
  extra: Partial<SessionChanges> = {},
): SessionChanges {
  return {
    cleared: false,
    set: new Map(Object.entries(entries).map(([field, text]) => [field, Buffer.from(text)])),
    removed: new Set<string>(),
    ofStoredSession: loaded,
    snapshot: () => new Map(),
    ...extra,
  };
}

describe('ended-session marks on the PostgreSQL store (statements)', () => {
  let counted: CountedStore;
  let db: TestDatabase;
  let pool: pg.Pool;
  let statements: string[] = [];
  let store: PostgresSessionStore;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    counted = await countedStore({
      clock,
      operationTimeoutInMilliseconds: 5_000,
      pruneIntervalInMilliseconds: 0,
    });
    ({ db, pool, statements, store } = counted);
  });
  afterAll(() => counted.close());
  beforeEach(() => {
    statements.length = 0;
  });

  const row = async (key: string) =>
    (
      await db.query<{ data: Record<string, string> }>(
        'SELECT data FROM nest_sessions WHERE session_key = $1',
        [key],
      )
    )[0];
  const mark = async (key: string) =>
    (
      await db.query<{ ending: string }>('SELECT ending FROM nest_sessions_ended WHERE session_key = $1', [
        key,
      ])
    )[0]?.ending;
  /** A stored session under `key` holding `seed`. */
  const seeded = (key: string) => store.commit(key, commitOf({ seed: 'old' }, false), IDLE);

  it('take with a mark: a late commit of the loaded session is refused (SessionMovedError) and writes nothing', async () => {
    await seeded('moved');
    expect((await store.take('moved', KEEP))?.get('seed')?.toString()).toBe('old');
    expect(await mark('moved')).toBe('m');
    statements.length = 0;
    await expect(store.commit('moved', commitOf({ late: 'x' }, true), IDLE)).rejects.toBeInstanceOf(
      SessionMovedError,
    );
    // The fast path (an UPDATE) found no row, and the function read the mark: nothing inserted.
    expect(statements).toEqual(['nss_commit_update', 'nss_commit']);
    expect(await row('moved')).toBeUndefined();
    // A removal (straight to the function) is refused the same way.
    await expect(
      store.commit('moved', commitOf({}, true, { removed: new Set(['seed']) }), IDLE),
    ).rejects.toBeInstanceOf(SessionMovedError);
    expect(await row('moved')).toBeUndefined();
  });

  it('remove with a mark: a late commit of the loaded session resolves and writes nothing', async () => {
    await seeded('abandoned');
    await store.remove('abandoned', KEEP);
    expect(await mark('abandoned')).toBe('a');
    await expect(store.commit('abandoned', commitOf({ late: 'x' }, true), IDLE)).resolves.toBeUndefined();
    await expect(
      store.commit('abandoned', commitOf({ other: 'y' }, true, { cleared: true }), IDLE),
    ).resolves.toBeUndefined();
    expect(await row('abandoned')).toBeUndefined();
  });

  it('without a mark (take or remove without one, or a request that loaded nothing) the commit applies', async () => {
    await seeded('unmarked-take');
    await store.take('unmarked-take');
    await seeded('unmarked-remove');
    await store.remove('unmarked-remove');
    expect(await mark('unmarked-take')).toBeUndefined();
    expect(await mark('unmarked-remove')).toBeUndefined();
    await store.commit('unmarked-take', commitOf({ late: 'x' }, true), IDLE);
    await store.commit('unmarked-remove', commitOf({ late: 'y' }, true), IDLE);
    expect((await row('unmarked-take'))?.data).toEqual({ late: Buffer.from('x').toString('base64') });
    expect((await row('unmarked-remove'))?.data).toEqual({ late: Buffer.from('y').toString('base64') });
    // A request that loaded nothing starts a session under a marked key (the mark is for loaded sessions only).
    await seeded('fresh-after-move');
    await store.take('fresh-after-move', KEEP);
    await store.commit('fresh-after-move', commitOf({ fresh: 'z' }, false), IDLE);
    expect((await store.load('fresh-after-move', IDLE))?.get('fresh')?.toString()).toBe('z');
  });

  it('the batched UPDATE turns away moved and abandoned sessions of its batch and applies the live ones', async () => {
    const keys = Array.from({ length: 9 }, (_, i) => `batched-${i}`);
    for (const key of keys) await seeded(key);
    await store.take('batched-3', KEEP);
    await store.remove('batched-5', KEEP);
    await store.take('batched-7', KEEP);
    statements.length = 0;
    const results = await Promise.allSettled(
      keys.map((key) => store.commit(key, commitOf({ late: key }, true), IDLE)),
    );
    expect(statements).toContain('nss_commit_update_many');
    expect(statements).not.toContain('nss_commit_set');
    expect(statements).not.toContain('nss_commit_set_many');
    const outcome = (r: PromiseSettledResult<void>) =>
      r.status === 'fulfilled' ? 'ok' : r.reason instanceof SessionMovedError ? 'moved' : String(r.reason);
    // batched-5 was abandoned: it resolves, nothing applied.
    expect(results.map(outcome)).toEqual(['ok', 'ok', 'ok', 'moved', 'ok', 'ok', 'ok', 'moved', 'ok']);
    for (const key of keys) {
      const gone = ['batched-3', 'batched-5', 'batched-7'].includes(key);
      expect([key, (await row(key))?.data.late]).toEqual([
        key,
        gone ? undefined : Buffer.from(key).toString('base64'),
      ]);
    }
  });

  it('take with a refuse window: no session and a move at most that old is refused (SessionMovedError), nothing marked; an older move or none is taken over', async () => {
    await seeded('twice');
    await store.take('twice', KEEP); // the first sign-in
    clock.advance(3_000);
    await expect(store.take('twice', { ...KEEP, refuseIfMovedWithinMs: 5_000 })).rejects.toBeInstanceOf(
      SessionMovedError,
    );
    const until = async () =>
      (
        await db.query<{ ms: number }>(
          'SELECT (extract(epoch FROM until) * 1000)::float8 AS ms FROM nest_sessions_ended WHERE session_key = $1',
          ['twice'],
        )
      )[0].ms;
    const before = await until();
    expect(before).toBe(clock.now() - 3_000 + IDLE); // the first's mark, not renewed
    // A window shorter than the move's age: not refused, and the mark is renewed by this take.
    await expect(store.take('twice', { ...KEEP, refuseIfMovedWithinMs: 2_000 })).resolves.toBeUndefined();
    expect(await until()).toBe(clock.now() + IDLE);
    // A live session is taken whatever the window; no mark at all is no refusal.
    await seeded('twice');
    expect((await store.take('twice', { ...KEEP, refuseIfMovedWithinMs: 60_000 }))?.has('seed')).toBe(true);
    await expect(
      store.take('never-moved', { ...KEEP, refuseIfMovedWithinMs: 60_000 }),
    ).resolves.toBeUndefined();
    expect(await mark('never-moved')).toBe('m');
  });

  it("take with a refuse window: a move whose clock read is later than this take's (a mover ahead, or that read it after this one) is refused too", async () => {
    await seeded('ahead');
    clock.advance(5);
    await store.take('ahead', KEEP); // its now is 5 ms after the one the second take reads
    clock.advance(-5);
    await expect(store.take('ahead', { ...KEEP, refuseIfMovedWithinMs: 5_000 })).rejects.toBeInstanceOf(
      SessionMovedError,
    );
  });

  it('two takes at once, both having loaded the session: the one that waited for the other (its row lock) finds the fresh mark and is refused', async () => {
    await seeded('at-once');
    const first = new pg.Client({ connectionString: db.url() });
    await first.connect();
    try {
      await first.query('BEGIN');
      const now = clock.now();
      // The first sign-in's take, as the store sends it, left uncommitted: it holds the session's row.
      const taken = await first.query<{ data: unknown }>(counted.connection.sql.take, [
        'at-once',
        now,
        now + IDLE,
        null,
        null,
        5_000,
      ]);
      expect(taken.rows[0].data).not.toBeNull();
      let settled = false;
      const second = store
        .take('at-once', { ...KEEP, refuseIfMovedWithinMs: 5_000 })
        .finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(settled).toBe(false); // waiting for the first's row lock
      await first.query('COMMIT');
      await expect(second).rejects.toBeInstanceOf(SessionMovedError);
      expect(await row('at-once')).toBeUndefined();
      expect(await mark('at-once')).toBe('m');
    } finally {
      await first.end();
    }
  });

  /** A request that found no session under `key` starts one there holding `cart`, refused after a move `within` ms old. */
  const start = (key: string, within = 5_000) =>
    store.commit(key, commitOf({ cart: 'item' }, false, { refuseIfMovedWithinMs: within }), IDLE);

  it('a start under a key found empty, with a refuse window: a move at most that old refuses it (SessionMovedError), nothing stored; an older move, an abandon or none lets it start there', async () => {
    await seeded('started');
    await store.take('started', KEEP); // another tab signs in
    clock.advance(3_000);
    await expect(start('started', 5_000)).rejects.toBeInstanceOf(SessionMovedError);
    expect(await row('started')).toBeUndefined();
    expect(await mark('started')).toBe('m');
    // The refusal is the function's, not a read before it.
    expect(statements.filter((name) => name === 'nss_ending')).toEqual([]);
    // A move older than the window (a browser whose sign-in reply was lost): the session starts, the mark goes.
    await start('started', 2_000);
    expect((await row('started'))?.data).toEqual({ cart: Buffer.from('item').toString('base64') });
    expect(await mark('started')).toBeUndefined();
    await store.remove('abandoned-start', KEEP);
    await start('abandoned-start', 60_000);
    await start('never-ended', 60_000);
    expect((await row('abandoned-start'))?.data.cart).toBeDefined();
    expect((await row('never-ended'))?.data.cart).toBeDefined();
  });

  /** A transaction on its own connection, left open while the store's statements run: `done` commits it. */
  const openTransaction = async () => {
    const client = new pg.Client({ connectionString: db.url() });
    await client.connect();
    await client.query('BEGIN');
    return {
      query: <T extends pg.QueryResultRow>(sql: string, args: unknown[]) => client.query<T>(sql, args),
      done: async () => {
        await client.query('COMMIT');
        await client.end();
      },
    };
  };
  /**
   * Whether `promise` is still pending once `n` statements of this database wait for a lock (pg_stat_activity): its
   * statement reached the database and queues there, so what is sent next queues behind it. Throws after 5 s.
   */
  const blockedBehind = async (promise: Promise<unknown>, n: number) => {
    let settled = false;
    void promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = Date.now() + 5_000;
    for (;;) {
      const [{ waiting }] = await db.query<{ waiting: number }>(
        "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (waiting >= n) return !settled;
      if (settled || Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  it("a sign-in's take, not yet committed, and a start under the same empty key: the start waits for it, then sees its mark and is refused", async () => {
    const signIn = await openTransaction();
    try {
      const now = clock.now();
      await signIn.query(counted.connection.sql.take, ['raced-take', now, now + IDLE, null, null, 5_000]);
      const started = start('raced-take');
      expect(await blockedBehind(started, 1)).toBe(true);
      await signIn.done();
      await expect(started).rejects.toBeInstanceOf(SessionMovedError);
      expect(await row('raced-take')).toBeUndefined();
    } finally {
      await signIn.done().catch(() => undefined);
    }
  });

  it("a start under an empty key, not yet committed, and a sign-in's take of it: the take waits for it, then takes what it stored", async () => {
    const start = await openTransaction();
    try {
      const now = clock.now();
      const cart = JSON.stringify({ cart: Buffer.from('item').toString('base64') });
      // The start's commit function call as the store sends it (a refuse window, no move yet): it applies.
      const { rows } = await start.query<{ reply: number[] }>(counted.connection.sql.commit, [
        'raced-start',
        now,
        now + IDLE,
        now + 5_000,
        false,
        [],
        cart,
        100,
        100_000,
        null,
        null,
        false,
        5_000,
      ]);
      expect(rows[0].reply[0]).toBe(1);
      const taken = store.take('raced-start', { ...KEEP, refuseIfMovedWithinMs: 5_000 });
      expect(await blockedBehind(taken, 1)).toBe(true);
      await start.done();
      expect((await taken)?.get('cart')?.toString()).toBe('item');
      expect(await row('raced-start')).toBeUndefined();
      expect(await mark('raced-start')).toBe('m');
    } finally {
      await start.done().catch(() => undefined);
    }
  });

  it("a start under a key whose expired row is not pruned yet, queued behind abandon()'s remove of it: both apply, no deadlock (the function locks the row before the mark)", async () => {
    await seeded('expired-row');
    await db.query(
      'UPDATE nest_sessions SET expires_at = to_timestamp($2::float8 / 1000) WHERE session_key = $1',
      ['expired-row', clock.now() - 1_000],
    );
    // An earlier abandon()'s mark, to be renewed by the remove and deleted by the start.
    await db.query(
      "INSERT INTO nest_sessions_ended (session_key, ending, until) VALUES ($1, 'a', to_timestamp($2::float8 / 1000))",
      ['expired-row', clock.now() + IDLE],
    );
    const holder = await openTransaction();
    try {
      await holder.query('SELECT 1 FROM nest_sessions WHERE session_key = $1 FOR UPDATE', ['expired-row']);
      const removed = store.remove('expired-row', KEEP);
      expect(await blockedBehind(removed, 1)).toBe(true);
      const started = start('expired-row');
      expect(await blockedBehind(started, 2)).toBe(true);
      await holder.done();
      expect(await Promise.allSettled([removed, started])).toEqual([
        { status: 'fulfilled', value: undefined },
        { status: 'fulfilled', value: undefined },
      ]);
      expect((await row('expired-row'))?.data).toEqual({ cart: Buffer.from('item').toString('base64') });
      expect(await mark('expired-row')).toBeUndefined();
    } finally {
      await holder.done().catch(() => undefined);
    }
  });

  it('a mark lasts keepMs of the app clock: afterwards a late commit applies as after expiry', async () => {
    await seeded('expiring');
    await store.take('expiring', { keepMs: 5_000 });
    clock.advance(4_999);
    await expect(store.commit('expiring', commitOf({ late: 'x' }, true), IDLE)).rejects.toBeInstanceOf(
      SessionMovedError,
    );
    clock.advance(2);
    await store.commit('expiring', commitOf({ late: 'x' }, true), IDLE);
    expect((await row('expiring'))?.data).toEqual({ late: Buffer.from('x').toString('base64') });
  });

  it('a session created afresh under the key deletes its mark (upsert, batched upsert and function), so the mark never turns away its requests', async () => {
    for (const key of ['fresh-upsert', 'fresh-function', 'fresh-many-0', 'fresh-many-1', 'fresh-many-2']) {
      await seeded(key);
      await store.take(key, KEEP);
    }
    await store.commit('fresh-upsert', commitOf({ fresh: 'u' }, false), IDLE);
    // A clear goes to the function.
    await store.commit('fresh-function', commitOf({ fresh: 'f' }, false, { cleared: true }), IDLE);
    statements.length = 0;
    await Promise.all(
      ['fresh-many-0', 'fresh-many-1', 'fresh-many-2'].map((key) =>
        store.commit(key, commitOf({ fresh: key }, false), IDLE),
      ),
    );
    expect(statements).toContain('nss_commit_set_many');
    for (const key of ['fresh-upsert', 'fresh-function', 'fresh-many-0', 'fresh-many-1', 'fresh-many-2']) {
      expect([key, await mark(key)]).toEqual([key, undefined]);
    }
    // The new session emptied by one request; another that loaded it commits late: applied, not "moved".
    await store.commit('fresh-upsert', commitOf({}, true, { removed: new Set(['fresh']) }), IDLE);
    expect(await row('fresh-upsert')).toBeUndefined();
    await store.commit('fresh-upsert', commitOf({ later: 'l' }, true), IDLE);
    expect((await row('fresh-upsert'))?.data).toEqual({ later: Buffer.from('l').toString('base64') });
  });

  it('prune deletes expired marks in bounded batches and keeps live ones', async () => {
    await db.query('DELETE FROM nest_sessions_ended');
    for (let i = 0; i < 5; i++) await store.remove(`pruned-${i}`, { keepMs: 1_000 });
    await store.remove('kept', { keepMs: 10_000 });
    clock.advance(1_001);
    const batches = new PostgresConnection(
      resolvePostgresOptions({ pool, clock, pruneBatchSize: 2, pruneIntervalInMilliseconds: 0 }),
    );
    statements.length = 0;
    await batches.prune();
    await batches.close(); // timers only: the pool is the test's
    // 2 + 2 + 1 marks: three statements, the last one not full.
    expect(statements.filter((name) => name === 'nss_prune')).toHaveLength(3);
    expect(await db.query('SELECT session_key FROM nest_sessions_ended')).toEqual([{ session_key: 'kept' }]);
  });

  it('under session.lock: a late commit after the move is refused as moved, the lock still held', async () => {
    await seeded('locked');
    expect(await store.tryLock('locked', 'token-1', 60_000)).toBe(true);
    await store.take('locked', KEEP);
    await expect(
      store.commit('locked', commitOf({ late: 'x' }, true, { lockToken: 'token-1' }), IDLE),
    ).rejects.toBeInstanceOf(SessionMovedError);
    expect(await row('locked')).toBeUndefined();
    await store.unlock('locked', 'token-1');
  });
});
