/**
 * The PostgreSQL store's session lock, statement by statement against a real database: the lock row's
 * expiry in the database's clock, tryLock reentrant for its token, renewLock only for the live holder, unlock
 * only by the holder, the commit fenced by the lock in the same transaction as the write (the plain upserts
 * never bypass it), regenerate's take and abandon's remove fenced in their statement, and prune deleting lock rows
 * left expired.
 */
import { SessionLockLostError, type SessionChanges } from 'nest-session-state';
import {
  PostgresConnection,
  PostgresSessionStore,
  resolvePostgresOptions,
} from 'nest-session-state/postgres';
import pg from 'pg';
import { TestDatabase } from '../support/postgres/index.js';

const TTL = 60_000;
const IDLE = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A commit that sets `field` to `value`, under the lock `lockToken` when given. */
function setting(field: string, value: string, lockToken?: string): SessionChanges {
  return {
    cleared: false,
    set: new Map([[field, Buffer.from(value)]]),
    removed: new Set<string>(),
    lockToken,
    snapshot: () => new Map(),
  };
}

/**
 * The commit function's arguments as the store sends them for `v` = `value` under the lock `lockToken`, at the
 * database's time `now` with the deadline `deadlineMs` (epoch ms).
 */
function functionArgs(
  key: string,
  now: number,
  deadlineMs: number,
  value: string,
  lockToken: string,
): unknown[] {
  const set = JSON.stringify({ v: Buffer.from(value).toString('base64') });
  return [key, now, now + IDLE, deadlineMs, false, [], set, 1_000, 1_000_000, null, lockToken, true, null];
}

describe('session.lock on the PostgreSQL store (statements)', () => {
  let db: TestDatabase;
  let connection: PostgresConnection;
  let store: PostgresSessionStore;

  beforeAll(async () => {
    db = await TestDatabase.create();
    connection = new PostgresConnection(
      // A generous operation timeout: statements here wait for row locks the tests hold (700 ms), on a loaded machine.
      resolvePostgresOptions({
        connectionString: db.url(),
        pruneIntervalInMilliseconds: 0,
        operationTimeoutInMilliseconds: 10_000,
      }),
    );
    await connection.connect();
    store = new PostgresSessionStore(connection);
  });
  afterAll(async () => {
    await connection.close();
    await db.drop();
  });

  /** Moves a lock's expiry into the past of the database's clock: the lease ran out (a stall longer than ttl). */
  const expire = (key: string) =>
    db.query(
      `UPDATE nest_sessions_locks SET expires_at = clock_timestamp() - interval '1 second' WHERE session_key = $1`,
      [key],
    );
  const lockRow = async (key: string) =>
    (
      await db.query<{ token: string; ms_left: number }>(
        `SELECT token, (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ms_left
         FROM nest_sessions_locks WHERE session_key = $1`,
        [key],
      )
    )[0];
  const stored = async (key: string) => (await store.load(key, IDLE))?.get('v')?.toString() ?? '(no session)';

  it('tryLock: taken once, reentrant for the same token (TTL renewed), refused to another token', async () => {
    expect(await store.tryLock('k-try', 'a', 5_000)).toBe(true);
    expect(await store.tryLock('k-try', 'a', TTL)).toBe(true);
    expect((await lockRow('k-try')).ms_left).toBeGreaterThan(30_000); // renewed to the new TTL
    expect(await store.tryLock('k-try', 'b', TTL)).toBe(false);
    expect((await lockRow('k-try')).token).toBe('a');
  });

  it('tryLock takes over a lock expired in the database clock', async () => {
    expect(await store.tryLock('k-over', 'a', TTL)).toBe(true);
    await expire('k-over');
    expect(await store.tryLock('k-over', 'b', TTL)).toBe(true);
    expect((await lockRow('k-over')).token).toBe('b');
  });

  it('the lock expires by its TTL in the database clock', async () => {
    expect(await store.tryLock('k-ttl', 'a', 1_000)).toBe(true);
    expect(await store.tryLock('k-ttl', 'b', TTL)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await store.tryLock('k-ttl', 'b', TTL)).toBe(true);
  });

  it('renewLock extends the live holder only: refuses a foreign token, an expired lock and a free one', async () => {
    expect(await store.tryLock('k-renew', 'a', 5_000)).toBe(true);
    expect(await store.renewLock('k-renew', 'b', TTL)).toBe(false);
    expect((await lockRow('k-renew')).token).toBe('a');
    expect(await store.renewLock('k-renew', 'a', TTL)).toBe(true);
    expect((await lockRow('k-renew')).ms_left).toBeGreaterThan(30_000);
    await expire('k-renew');
    expect(await store.renewLock('k-renew', 'a', TTL)).toBe(false); // never gets an expired lock back
    expect((await lockRow('k-renew')).ms_left).toBeLessThan(0);
    expect(await store.renewLock('k-free', 'a', TTL)).toBe(false); // never takes a free one
    expect(await lockRow('k-free')).toBeUndefined();
  });

  it('unlock by a foreign token does nothing; by the holder it frees the lock', async () => {
    expect(await store.tryLock('k-unlock', 'a', TTL)).toBe(true);
    await store.unlock('k-unlock', 'b');
    expect((await lockRow('k-unlock')).token).toBe('a');
    expect(await store.tryLock('k-unlock', 'b', TTL)).toBe(false);
    await store.unlock('k-unlock', 'a');
    expect(await lockRow('k-unlock')).toBeUndefined();
    expect(await store.tryLock('k-unlock', 'b', TTL)).toBe(true);
  });

  it('a commit whose token no longer holds the lock applies nothing and throws SessionLockLostError; the holder commits', async () => {
    await store.commit('k-fence', setting('v', 'before'), IDLE);
    expect(await store.tryLock('k-fence', 'stale', TTL)).toBe(true);
    await expire('k-fence');
    expect(await store.tryLock('k-fence', 'live', TTL)).toBe(true);
    // Keys set only: the plain upsert's shape, which must not bypass the fence.
    await expect(store.commit('k-fence', setting('v', 'stale write', 'stale'), IDLE)).rejects.toBeInstanceOf(
      SessionLockLostError,
    );
    expect(await stored('k-fence')).toBe('before');
    await store.commit('k-fence', setting('v', 'live write', 'live'), IDLE);
    expect(await stored('k-fence')).toBe('live write');
  });

  it('a commit under an expired lock nobody took over, or one released, is refused too', async () => {
    await store.commit('k-gone', setting('v', 'before'), IDLE);
    expect(await store.tryLock('k-gone', 'a', TTL)).toBe(true);
    await expire('k-gone');
    await expect(store.commit('k-gone', setting('v', 'late', 'a'), IDLE)).rejects.toBeInstanceOf(
      SessionLockLostError,
    );
    await store.unlock('k-gone', 'a');
    await expect(
      store.commit('k-gone', { ...setting('v', 'late', 'a'), removed: new Set(['w']) }, IDLE),
    ).rejects.toBeInstanceOf(SessionLockLostError);
    // A new session (no row yet) under a lost lock is not created either.
    await expect(store.commit('k-new', setting('v', 'late', 'nobody'), IDLE)).rejects.toBeInstanceOf(
      SessionLockLostError,
    );
    expect(await stored('k-gone')).toBe('before');
    expect(await stored('k-new')).toBe('(no session)');
  });

  it("take and remove (regenerate, abandon) whose token no longer holds the lock throw SessionLockLostError: nothing deleted, no mark left; the holder's apply", async () => {
    const mark = (lockToken: string) => ({ keepMs: IDLE, lockToken });
    const endings = async () =>
      (
        await db.query<{ session_key: string; ending: string }>(
          "SELECT session_key, ending FROM nest_sessions_ended WHERE session_key LIKE 'k-end-%' ORDER BY 1",
        )
      ).map((row) => `${row.session_key}:${row.ending}`);
    for (const key of ['k-end-take', 'k-end-remove']) {
      await store.commit(key, setting('v', 'theirs'), IDLE);
      expect(await store.tryLock(key, 'stale', TTL)).toBe(true);
      await expire(key);
    }
    // Expired, nobody took it over; then taken over by another token.
    await expect(store.take('k-end-take', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    await expect(store.remove('k-end-remove', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    for (const key of ['k-end-take', 'k-end-remove'])
      expect(await store.tryLock(key, 'live', TTL)).toBe(true);
    await expect(store.take('k-end-take', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    await expect(store.remove('k-end-remove', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    // A key with no lock row at all (released, or pruned) is refused too.
    await expect(store.take('k-end-none', mark('stale'))).rejects.toBeInstanceOf(SessionLockLostError);
    expect(await stored('k-end-take')).toBe('theirs');
    expect(await stored('k-end-remove')).toBe('theirs');
    expect(await endings()).toEqual([]);

    expect((await store.take('k-end-take', mark('live')))?.get('v')?.toString()).toBe('theirs');
    await store.remove('k-end-remove', mark('live'));
    expect(await stored('k-end-take')).toBe('(no session)');
    expect(await stored('k-end-remove')).toBe('(no session)');
    expect(await endings()).toEqual(['k-end-remove:a', 'k-end-take:m']);
  });

  /**
   * Runs `write` (a fenced statement under lock token 'a' on `key`, given the database's time) in a transaction
   * left open while the lease runs out, then checks that a takeover by 'b' waits for that transaction (the lock
   * row held FOR SHARE) and gets the lock once it commits.
   */
  /**
   * Takes `key`'s lock for `a`, runs `write` (a fenced statement as `a`) in a transaction of another connection left
   * open, lets the lease run out meanwhile, and checks that a takeover by `b` waits for that transaction.
   */
  async function takeoverWaitsFor(key: string, write: (client: pg.Client, now: number) => Promise<void>) {
    const client = new pg.Client({ connectionString: db.url() });
    await client.connect();
    try {
      await client.query('BEGIN'); // connected first: the lease need not cover a new backend's start
      // A lease that a pause of the loaded test process does not outlast before the fenced statement runs.
      expect(await store.tryLock(key, 'a', 2_000)).toBe(true);
      const { rows } = await client.query<{ now: number }>(
        'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
      );
      await write(client, rows[0].now);
      // The lease runs out while that transaction is open (a plain SELECT is not held back by its FOR SHARE).
      for (let waited = 0; (await lockRow(key)).ms_left >= 0; waited += 50) {
        if (waited > 10_000) throw new Error(`the lock of ${key} did not run out`);
        await sleep(50);
      }
      let settled = false;
      const takeover = store.tryLock(key, 'b', TTL).finally(() => (settled = true));
      await sleep(200);
      expect(settled).toBe(false); // the statement's FOR SHARE on the lock row holds it back
      await client.query('COMMIT');
      expect(await takeover).toBe(true);
    } finally {
      await client.end();
    }
  }

  it('a takeover of an expired lock waits for a fenced take still in its transaction, then finds the session moved', async () => {
    await store.commit('k-take-share', setting('v', 'before'), IDLE);
    await takeoverWaitsFor('k-take-share', async (client, now) => {
      // The statement as the store sends it: key, now, until when the mark lasts, token.
      const taken = await client.query<{ held: boolean; live: boolean }>(connection.sql.take, [
        'k-take-share',
        now,
        now + IDLE,
        'a',
        now + 60_000,
        null, // no refuse window
      ]);
      expect(taken.rows).toMatchObject([{ held: true, live: true }]); // taken, not yet committed
    });
    expect(await stored('k-take-share')).toBe('(no session)');
  });

  it('a subclass that keeps its locks elsewhere (its own tryLock) commits: tokens it never put in the lock table are not checked', async () => {
    class OwnLocksStore extends PostgresSessionStore {
      override tryLock(): Promise<boolean> {
        return Promise.resolve(true);
      }
    }
    const own = new OwnLocksStore(connection);
    expect(await own.tryLock()).toBe(true);
    await own.commit('k-own', setting('v', 'written', 'token-kept-elsewhere'), IDLE);
    expect(await stored('k-own')).toBe('written');
    // Nor by regenerate's take and abandon's remove.
    const mark = { keepMs: IDLE, lockToken: 'token-kept-elsewhere' };
    expect((await own.take('k-own', mark))?.get('v')?.toString()).toBe('written');
    await own.commit('k-own', setting('v', 'again'), IDLE);
    await own.remove('k-own', mark);
    expect(await stored('k-own')).toBe('(no session)');
  });

  /**
   * Another transaction holding the lock row of `key` (FOR UPDATE, as a renewal's UPDATE or a takeover does)
   * until the returned function ends it.
   */
  async function holdLockRow(key: string): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: db.url() });
    await client.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1 FROM nest_sessions_locks WHERE session_key = $1 FOR UPDATE', [key]);
    return async () => {
      await client.query('COMMIT');
      await client.end();
    };
  }

  it('a commit that waited for the lock row past its deadline applies nothing (a 503 never lands later)', async () => {
    await store.commit('k-late', setting('v', 'before'), IDLE);
    expect(await store.tryLock('k-late', 'a', TTL)).toBe(true);
    const release = await holdLockRow('k-late');
    const [{ now }] = await db.query<{ now: number }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
    );
    // The function called as the store calls it, with a deadline 200 ms away; the row is held for 600 ms.
    const reply = db.query<{ reply: number[] }>(
      connection.sql.commit,
      functionArgs('k-late', now, now + 200, 'late', 'a'),
    );
    await sleep(600);
    await release();
    expect((await reply)[0].reply[0]).toBe(0); // too late: nothing applied
    expect(await stored('k-late')).toBe('before');
  });

  it('tryLock of another token answers false at once while the lock row is held, instead of queueing for it', async () => {
    expect(await store.tryLock('k-busy', 'a', TTL)).toBe(true);
    const release = await holdLockRow('k-busy');
    try {
      const started = Date.now();
      expect(await store.tryLock('k-busy', 'b', TTL)).toBe(false);
      expect(Date.now() - started).toBeLessThan(500); // the row is held for longer than the operation timeout
    } finally {
      await release();
    }
    expect((await lockRow('k-busy')).token).toBe('a');
  });

  it('a takeover that waited for the lock row gets its whole TTL from when it took the lock', async () => {
    expect(await store.tryLock('k-wait', 'a', TTL)).toBe(true);
    await expire('k-wait');
    const release = await holdLockRow('k-wait');
    const taken = store.tryLock('k-wait', 'b', 500);
    await sleep(700);
    await release();
    expect(await taken).toBe(true);
    expect((await lockRow('k-wait')).ms_left).toBeGreaterThan(300); // not 500 ms from before the wait
    expect(await store.tryLock('k-wait', 'c', TTL)).toBe(false);
  });

  it('a take or remove that reaches the database after the app stopped waiting takes, deletes and marks nothing', async () => {
    await store.commit('k-take-late', setting('v', 'kept'), IDLE);
    await store.commit('k-remove-late', setting('v', 'kept'), IDLE);
    const [{ now }] = await db.query<{ now: number }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
    );
    expect(
      await db.query(connection.sql.take, ['k-take-late', now, now + IDLE, null, now - 1, null]),
    ).toMatchObject([{ held: true, in_time: false, data: null }]);
    expect(await db.query(connection.sql.remove, ['k-remove-late', now + IDLE, null, now - 1])).toEqual([
      { held: true, in_time: false },
    ]);
    expect(await stored('k-take-late')).toBe('kept');
    expect(await stored('k-remove-late')).toBe('kept');
    expect(
      await db.query("SELECT session_key FROM nest_sessions_ended WHERE session_key LIKE 'k-%-late'"),
    ).toEqual([]);
  });

  it('a lock try that reaches the database after the app stopped waiting takes nothing', async () => {
    const [{ now }] = await db.query<{ now: number }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
    );
    expect(await db.query(connection.sql.tryLock, ['k-gave-up', 'a', TTL, now - 1])).toEqual([]);
    expect(await lockRow('k-gave-up')).toBeUndefined();
    expect(await db.query(connection.sql.tryLock, ['k-gave-up', 'a', TTL, now + 60_000])).toHaveLength(1);
  });

  it('a takeover of an expired lock waits for a fenced commit still in its transaction, then reads its write', async () => {
    await store.commit('k-share', setting('v', 'before'), IDLE);
    await takeoverWaitsFor('k-share', async (client, now) => {
      const reply = await client.query<{ reply: number[] }>(
        connection.sql.commit,
        functionArgs('k-share', now, now + 60_000, 'during', 'a'),
      );
      expect(reply.rows[0].reply[0]).toBe(1); // applied, not yet committed
    });
    expect(await stored('k-share')).toBe('during');
  });

  it('prune deletes lock rows expired in the database clock and leaves live ones', async () => {
    await db.query('DELETE FROM nest_sessions_locks');
    expect(await store.tryLock('k-prune-old', 'a', TTL)).toBe(true);
    expect(await store.tryLock('k-prune-live', 'b', TTL)).toBe(true);
    await expire('k-prune-old');
    await store.prune();
    expect(await db.query('SELECT session_key FROM nest_sessions_locks')).toEqual([
      { session_key: 'k-prune-live' },
    ]);
  });
});
