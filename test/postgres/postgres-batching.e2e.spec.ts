import type pg from 'pg';
import { ManualClock, SessionLimitExceededError } from 'nest-session-state';
import {
  PostgresConnection,
  PostgresSessionStore,
  resolvePostgresOptions,
} from 'nest-session-state/postgres';
import { countedStore, countingPool, TestDatabase, type CountedStore } from '../support/postgres/index.js';

const value = (text: string) => Buffer.from(text);
const setting = (entries: Record<string, string>) => ({
  cleared: false,
  set: new Map(Object.entries(entries).map(([key, text]) => [key, value(text)])),
  removed: new Set<string>(),
  snapshot: () => new Map(),
});
const text = (data: Map<string, Uint8Array> | undefined, key: string) => {
  const bytes = data?.get(key);
  return bytes === undefined ? undefined : Buffer.from(bytes).toString();
};

/**
 * Concurrent loads and commits go out together: one statement in flight per kind, whatever arrives
 * meanwhile joins the next one (postgres-session.store.ts, statement-batcher.ts). The statements are
 * counted on the store's own pool.
 */
describe('PostgreSQL store: concurrent operations share statements', () => {
  let counted: CountedStore;
  let pool: pg.Pool;
  let store: PostgresSessionStore;
  let statements: string[] = [];
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    counted = await countedStore({
      clock,
      operationTimeoutInMilliseconds: 400,
      pruneIntervalInMilliseconds: 0,
    });
    ({ pool, statements, store } = counted);
  });
  afterAll(() => counted.close());
  beforeEach(() => {
    statements.length = 0;
  });

  it('40 concurrent commits of different sessions all persist in fewer statements, and 40 concurrent loads each get their own session', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `batch-${i}`);
    await Promise.all(keys.map((key, i) => store.commit(key, setting({ n: `v${i}` }), 60_000)));
    expect(statements).toContain('nss_commit_set_many');
    expect(statements.length).toBeLessThan(40);
    expect(statements).not.toContain('nss_commit'); // no fallback to the function

    statements.length = 0;
    const loaded = await Promise.all(keys.map((key) => store.load(key, 60_000)));
    expect(statements).toContain('nss_load_many');
    expect(statements.length).toBeLessThan(40);
    loaded.forEach((data, i) => expect(text(data, 'n')).toBe(`v${i}`));
    const missing = await Promise.all([
      store.load('batch-none-1', 60_000),
      store.load('batch-none-2', 60_000),
    ]);
    expect(missing).toEqual([undefined, undefined]);
  });

  it('commits of one session arriving together go out in successive statements (a row appears once per upsert) and all persist', async () => {
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => store.commit('same', setting({ [`k${i}`]: `v${i}` }), 60_000)),
      ...Array.from({ length: 10 }, (_, i) => store.commit(`other-${i}`, setting({ x: 'y' }), 60_000)),
    ]);
    const data = await store.load('same', 60_000);
    for (let i = 0; i < 20; i++) expect(text(data, `k${i}`)).toBe(`v${i}`);
    expect(statements).toContain('nss_commit_set_many');
  });

  it('a batched commit that would pass maxKeys is refused alone (by the commit function); the rest of its batch applies', async () => {
    const limits = { maxKeys: 3, maxSessionBytes: 1_000_000 };
    await store.commit('full', setting({ a: '1', b: '2', c: '3' }), 60_000, limits);
    const results = await Promise.allSettled([
      store.commit('warm-up', setting({ w: '1' }), 60_000, limits), // in flight: the others queue behind it
      store.commit('full', setting({ d: '4' }), 60_000, limits),
      ...Array.from({ length: 8 }, (_, i) =>
        store.commit(`fits-${i}`, setting({ v: `${i}` }), 60_000, limits),
      ),
    ]);
    expect(results[1].status).toBe('rejected');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(SessionLimitExceededError);
    for (const result of [results[0], ...results.slice(2)]) expect(result.status).toBe('fulfilled');
    expect(statements).toContain('nss_commit_set_many');
    expect(text(await store.load('full', 60_000), 'd')).toBeUndefined();
    for (let i = 0; i < 8; i++) expect(text(await store.load(`fits-${i}`, 60_000), 'v')).toBe(`${i}`);
  });

  it('commits of sessions the requests loaded go out as batched UPDATEs (never inserts): all merge and persist; one over maxKeys is refused alone', async () => {
    const limits = { maxKeys: 3, maxSessionBytes: 1_000_000 };
    const keys = Array.from({ length: 12 }, (_, i) => `loaded-${i}`);
    for (const key of keys) await store.commit(key, setting({ a: '1' }), 60_000, limits);
    await store.commit('loaded-full', setting({ a: '1', b: '2', c: '3' }), 60_000, limits);
    statements.length = 0;
    const loaded = (entries: Record<string, string>) => ({ ...setting(entries), ofStoredSession: true });
    const results = await Promise.allSettled([
      ...keys.map((key, i) => store.commit(key, loaded({ b: `${i}` }), 60_000, limits)),
      store.commit('loaded-full', loaded({ d: '4' }), 60_000, limits),
    ]);
    expect(statements).toContain('nss_commit_update_many');
    expect(statements.filter((name) => name.startsWith('nss_commit_set'))).toEqual([]);
    expect(statements.filter((name) => name === 'nss_commit')).toHaveLength(1); // loaded-full, to the function
    expect(results.at(-1)?.status).toBe('rejected');
    expect((results.at(-1) as PromiseRejectedResult).reason).toBeInstanceOf(SessionLimitExceededError);
    for (const [i, key] of keys.entries()) {
      const data = await store.load(key, 60_000);
      expect([key, text(data, 'a'), text(data, 'b')]).toEqual([key, '1', `${i}`]);
    }
  });

  it('a batched commit to an expired session replaces it instead of merging into it', async () => {
    await store.commit('stale', setting({ old: 'x' }), 1_000);
    clock.advance(5_000);
    statements.length = 0;
    await Promise.all([
      store.commit('pad-first', setting({ p: 'q' }), 60_000), // in flight: the others queue behind it
      store.commit('stale', setting({ fresh: 'y' }), 60_000),
      ...Array.from({ length: 6 }, (_, i) => store.commit(`pad-${i}`, setting({ p: 'q' }), 60_000)),
    ]);
    expect(statements).toEqual(['nss_commit_set', 'nss_commit_set_many']);
    const data = await store.load('stale', 60_000);
    expect(text(data, 'fresh')).toBe('y');
    expect(text(data, 'old')).toBeUndefined();
  });

  /**
   * Runs `operation` on `key` while another transaction holds the session's row with FOR UPDATE and changes nothing
   * (PostgreSQL does not judge an UPDATE's or DELETE's WHERE again after such a wait), past the operation timeout;
   * then lets the row go. Resolves 'applied' or 'failed', once what the lock held had its chance to run.
   */
  async function heldByRowLock(key: string, operation: () => Promise<unknown>): Promise<string> {
    const holder = await pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "public"."nest_sessions" WHERE session_key = $1 FOR UPDATE`, [key]);
    const result = await operation().then(
      () => 'applied',
      () => 'failed',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    await holder.query('COMMIT');
    holder.release();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the statement the lock held runs now, if it ever does
    return result;
  }

  it("a loaded session's commit held past its deadline by a row lock that changes nothing fails and never lands (an app's pool: no statement_timeout)", async () => {
    await store.commit('held-loaded', setting({ v: 'before' }), 60_000);
    const late = { ...setting({ v: 'late' }), ofStoredSession: true };
    expect(await heldByRowLock('held-loaded', () => store.commit('held-loaded', late, 60_000))).toBe(
      'failed',
    );
    expect(text(await store.load('held-loaded', 60_000), 'v')).toBe('before');
  });

  it.each([
    ['take', 'regenerate()'],
    ['remove', 'abandon()'],
  ] as const)(
    "%s (%s's) held past its deadline by a row lock that changes nothing fails and never lands: no delete, no mark",
    async (operation, _ending) => {
      const key = `held-${operation}`;
      await store.commit(key, setting({ v: 'kept' }), 60_000);
      expect(await heldByRowLock(key, () => store[operation](key, { keepMs: 60_000 }))).toBe('failed');
      expect(text(await store.load(key, 60_000), 'v')).toBe('kept');
      const marks = await pool.query(`SELECT 1 FROM "public"."nest_sessions_ended" WHERE session_key = $1`, [
        key,
      ]);
      expect(marks.rowCount).toBe(0);
    },
  );

  it('commits queued behind a stalled statement fail within the operation timeout and never land', async () => {
    await store.commit('locked', setting({ v: 'before' }), 60_000);
    // Another transaction holds the row: the next commit of 'locked' waits for it, and the rest queue.
    const holder = await pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "public"."nest_sessions" WHERE session_key = 'locked' FOR UPDATE`);
    const started = Date.now();
    const results = await Promise.allSettled([
      store.commit('locked', setting({ v: 'after' }), 60_000),
      ...Array.from({ length: 5 }, (_, i) => store.commit(`queued-${i}`, setting({ v: 'q' }), 60_000)),
    ]);
    const elapsed = Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 300));
    await holder.query('COMMIT');
    holder.release();
    expect(results.every((result) => result.status === 'rejected')).toBe(true);
    // Bounded, not waiting for the holder (it lets go only after all of them settled): the 400 ms timeout plus what a
    // loaded machine adds to timers (CI on Node 24 once answered after 1448 ms).
    expect(elapsed).toBeLessThan(400 + 1_600);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(text(await store.load('locked', 60_000), 'v')).toBe('before');
    for (let i = 0; i < 5; i++) expect(await store.load(`queued-${i}`, 60_000)).toBeUndefined();
  });
});

describe("PostgreSQL store: modules sharing an app's pool", () => {
  it('two tables on one pool (one connection) each keep their sessions: their statements do not share names', async () => {
    const db = await TestDatabase.create();
    const { pool } = countingPool(db.url(), 1);
    const connections = ['a_sessions', 'b_sessions'].map(
      (tableName) =>
        new PostgresConnection(resolvePostgresOptions({ pool, tableName, pruneIntervalInMilliseconds: 0 })),
    );
    try {
      for (const connection of connections) await connection.connect();
      const [a, b] = connections.map((connection) => new PostgresSessionStore(connection));
      for (let i = 0; i < 3; i++) {
        await a.commit('shared', setting({ n: `a${i}` }), 60_000);
        await b.commit('shared', setting({ n: `b${i}` }), 60_000);
        await a.commit('shared', { ...setting({ m: `a${i}` }), ofStoredSession: true }, 60_000);
        await b.commit('shared', { ...setting({ m: `b${i}` }), ofStoredSession: true }, 60_000);
      }
      expect([text(await a.load('shared', 60_000), 'n'), text(await a.load('shared', 60_000), 'm')]).toEqual([
        'a2',
        'a2',
      ]);
      expect([text(await b.load('shared', 60_000), 'n'), text(await b.load('shared', 60_000), 'm')]).toEqual([
        'b2',
        'b2',
      ]);
    } finally {
      for (const connection of connections) await connection.close();
      await pool.end();
      await db.drop();
    }
  });
});
