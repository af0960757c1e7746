import type { INestApplication } from '@nestjs/common';
import pg from 'pg';
import request from 'supertest';
import { ManualClock } from 'nest-session-state';
import {
  PostgresConnection,
  PostgresSessionStore,
  resolvePostgresOptions,
} from 'nest-session-state/postgres';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { countingPool, TestDatabase } from '../support/postgres/index.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Rt6vB2xZ9pLq4nYc1sWd8hJk3fMg7aEu0iOt5yPz2L'];

function sessionKeyOf(cookie: string): string {
  const signed = cookie.slice(cookie.indexOf('=') + 1);
  return signed.slice(0, signed.lastIndexOf('.'));
}

describe('sessions on PostgreSQL', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let url: string;
  let statements: string[] = [];
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await TestDatabase.create();
    // The app's own pool (postgres.pool), watched to count the statements each request sends.
    ({ pool, statements } = countingPool(db.url(), 4));
    ({ app, url } = await startSessionApp({
      secrets: SECRETS,
      postgres: { pool, schema: 'state', tableName: 'web_sessions' },
    }));
  });
  afterAll(async () => {
    await app.close();
    await pool.end(); // the module leaves a pool it was given open
    await db.drop();
  });

  it('creates schema, table, expiry index and commit function; one row per session, its values in data, expires_at the idle timeout away', async () => {
    const res = await request(url).get('/counter').expect(200, { count: 1 });
    await request(url).get('/id').set('Cookie', cookiePair(res, COOKIE)).expect(200); // stores the id field
    const key = sessionKeyOf(cookiePair(res, COOKIE));
    const [row] = await db.query<{ fields: string[]; left: number }>(
      `SELECT ARRAY(SELECT jsonb_object_keys(data) ORDER BY 1) AS fields,
              (extract(epoch FROM expires_at - now()) * 1000)::float8 AS left
         FROM state.web_sessions WHERE session_key = $1`,
      [key],
    );
    expect(row.fields.sort()).toEqual(['\\0id', 'count']); // the reserved "\u0000id", escaped (text has no NUL)
    expect(row.left).toBeGreaterThan(19 * 60_000);
    expect(row.left).toBeLessThanOrEqual(20 * 60_000);
    const indexes = await db.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = 'state' AND tablename = 'web_sessions'`,
    );
    expect(indexes.map((i) => i.indexdef).join('\n')).toMatch(/USING btree \(expires_at\)/);
  });

  it('round trips: read + write 2 statements (keys set: a plain UPDATE of the loaded row, an upsert for a new session; removals or clear: the function), read-only 1, untouched 0 when slid moments ago', async () => {
    const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    const measure = async (path: string, method: 'get' | 'post' = 'get') => {
      statements.length = 0;
      await request(url)[method](path).set('Cookie', cookie).expect(200);
      await new Promise((resolve) => setTimeout(resolve, 30));
      return [...statements];
    };
    expect(await measure('/counter')).toEqual(['nss_load', 'nss_commit_update']);
    expect(await measure('/read')).toEqual(['nss_load']);
    expect(await measure('/untouched')).toEqual([]);
    expect(await measure('/clear', 'post')).toEqual(['nss_load', 'nss_commit']);
    statements.length = 0;
    await request(url).get('/counter').expect(200); // no cookie: a new session
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(statements).toEqual(['nss_commit_set']);
  });

  it('50 concurrent requests setting different keys of one session all persist', async () => {
    const cookie = cookiePair(await request(url).post('/set/seed').expect(200), COOKIE);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        request(url)
          .post(`/set/k${i}`)
          .set('Cookie', cookie)
          .send({ value: `v${i}` })
          .expect(200),
      ),
    );
    const { body } = await request(url).get('/keys').set('Cookie', cookie).expect(200);
    for (let i = 0; i < 50; i++) expect(body[`k${i}`]).toBe(`v${i}`);
    expect(Object.keys(body)).toHaveLength(51);
  });

  it('keys with backslashes and values of any bytes round-trip (field names are escaped, values base64)', async () => {
    const cookie = cookiePair(
      await request(url).post('/set/a%5C0b').send({ value: 'x\u0000y\\z' }).expect(200),
      COOKIE,
    );
    await request(url).post('/set/plain').set('Cookie', cookie).send({ value: 'é' }).expect(200);
    await request(url).get('/keys').set('Cookie', cookie).expect(200, { 'a\\0b': 'x\u0000y\\z', plain: 'é' });
  });

  it('regenerate writes the data under a new key and deletes the old row', async () => {
    const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    const res = await request(url).post('/regenerate').set('Cookie', cookie).expect(200);
    const next = cookiePair(res, COOKIE);
    expect(
      await db.query('SELECT 1 FROM state.web_sessions WHERE session_key = $1', [sessionKeyOf(cookie)]),
    ).toEqual([]);
    await request(url).get('/counter').set('Cookie', next).expect(200, { count: 2 });
  });

  it('a second start on the same table reuses it (existing sessions survive a restart)', async () => {
    const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    const again = await startSessionApp({
      secrets: SECRETS,
      postgres: {
        connectionString: db.url(),
        schema: 'state',
        tableName: 'web_sessions',
        createTable: false,
      },
    });
    try {
      await request(again.url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    } finally {
      await again.app.close();
    }
  });
});

describe('expired sessions are pruned in bounded batches through the expiry index', () => {
  let db: TestDatabase;
  let connection: PostgresConnection;
  let store: PostgresSessionStore;
  const clock = new ManualClock(Date.now());
  const change = (value: string) => ({
    cleared: false,
    set: new Map([['v', Buffer.from(value)]]),
    removed: new Set<string>(),
    snapshot: () => new Map(),
  });

  beforeAll(async () => {
    db = await TestDatabase.create();
    connection = new PostgresConnection(
      resolvePostgresOptions({
        connectionString: db.url(),
        clock,
        pruneBatchSize: 7,
        pruneIntervalInMilliseconds: 0,
      }),
    );
    await connection.connect();
    store = new PostgresSessionStore(connection);
  });
  afterAll(async () => {
    await connection.close();
    await db.drop();
  });

  /** The row's expiry, epoch ms. */
  const expiresAt = async (key: string) =>
    Number(
      (
        await db.query<{ at: string }>(
          'SELECT (extract(epoch FROM expires_at) * 1000)::float8 AS at FROM nest_sessions WHERE session_key = $1',
          [key],
        )
      )[0].at,
    );

  it('an expired session is invisible at once, deleted by prune; live ones stay', async () => {
    for (let i = 0; i < 30; i++) await store.commit(`old${i}`, change('x'), 60_000);
    clock.advance(30_000);
    await store.commit('live', change('y'), 60_000);
    clock.advance(30_001);
    expect(await store.load('old0', 60_000)).toBeUndefined(); // expired, not yet deleted
    expect((await db.query('SELECT count(*)::int AS n FROM nest_sessions'))[0]).toEqual({ n: 31 });
    expect(await store.prune()).toBe(30); // batches of 7: 7, 7, 7, 7, 2
    expect(await db.query('SELECT session_key FROM nest_sessions')).toEqual([{ session_key: 'live' }]);
    expect((await store.load('live', 60_000))?.get('v')?.toString()).toBe('y');
  });

  it('a prune runs at most 10 statements: a backlog larger than 10 batches is left to the next tick', async () => {
    // docs/postgres.md: "a tick runs at most 10 statements", so a large backlog never holds a connection for long.
    await Promise.all(Array.from({ length: 75 }, (_, i) => store.commit(`backlog${i}`, change('x'), 1_000)));
    clock.advance(1_001);
    expect(await store.prune()).toBe(70); // 10 batches of 7
    expect(await store.prune()).toBe(5);
    expect(await db.query(`SELECT session_key FROM nest_sessions WHERE session_key LIKE 'backlog%'`)).toEqual(
      [],
    );
  });

  it('prune also deletes the user-index entries of the sessions it deletes (users who never come back keep none)', async () => {
    const bound = (id: string) => ({
      ...change('z'),
      set: new Map([
        ['\u0000id', Buffer.from(id)],
        ['v', Buffer.from('z')],
      ]),
    });
    const index = store.userSessionIndex();
    await store.commit('bound-old', bound('id-old'), 60_000);
    await index.add('carol', { sessionId: 'id-old', sessionKey: 'bound-old', metadata: {} }, 60_000);
    clock.advance(30_000);
    await store.commit('bound-live', bound('id-live'), 60_000);
    await index.add('carol', { sessionId: 'id-live', sessionKey: 'bound-live', metadata: {} }, 60_000);
    clock.advance(30_001);
    expect(await store.prune()).toBeGreaterThanOrEqual(1);
    expect(await db.query('SELECT session_id FROM nest_sessions_users ORDER BY 1')).toEqual([
      { session_id: 'id-live' },
    ]);
    expect((await index.list('carol')).map((s) => s.sessionId)).toEqual(['id-live']);
  });

  it('loads and commits slide the expiry, except within a slide step (idleTimeout / 20) of the last slide', async () => {
    await store.commit('slide', change('s'), 60_000);
    const committed = clock.now() + 60_000;
    expect(await expiresAt('slide')).toBeCloseTo(committed, -1);
    clock.advance(2_000); // within the step of 3 s: the row is not written
    expect((await store.load('slide', 60_000))?.get('v')?.toString()).toBe('s');
    expect(await expiresAt('slide')).toBeCloseTo(committed, -1);
    clock.advance(2_000); // 4 s since the slide: slid
    await store.load('slide', 60_000);
    const slid = clock.now() + 60_000;
    expect(await expiresAt('slide')).toBeCloseTo(slid, -1);
    clock.advance(2_000); // a commit within the step changes the data, not the expiry (an in-place update)
    await store.commit('slide', change('t'), 60_000);
    expect(await expiresAt('slide')).toBeCloseTo(slid, -1);
    clock.advance(2_000); // a commit past the step slides
    await store.commit('slide', change('u'), 60_000);
    expect(await expiresAt('slide')).toBeCloseTo(clock.now() + 60_000, -1);
    expect((await store.load('slide', 60_000))?.get('v')?.toString()).toBe('u');
  });

  it("a slide from an instance whose clock is behind never moves the expiry earlier (each instance's clock sets it)", async () => {
    await store.commit('skew', change('s'), 60_000);
    const committed = clock.now() + 60_000;
    clock.advance(-5_000); // an instance 5 s behind slides it (an untouched request)
    try {
      await store.refresh('skew', 60_000);
      expect(await expiresAt('skew')).toBeCloseTo(committed, -1);
    } finally {
      clock.advance(5_000);
    }
    clock.advance(1_000); // a slide from a clock past the last one moves it on
    await store.refresh('skew', 60_000);
    expect(await expiresAt('skew')).toBeCloseTo(clock.now() + 60_000, -1);
  });

  it('the prune statement can use the expiry index (no full scan needed)', async () => {
    const client = await db.admin().connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = (await client.query(`EXPLAIN ${connection.sql.prune}`, [clock.now(), 7])).rows
        .map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN'])
        .join('\n');
      expect(plan).toMatch(/Index Scan using nest_sessions_expires_at_idx/);
    } finally {
      client.release();
    }
  });

  it('the module prunes on its timer (pruneIntervalInMilliseconds)', async () => {
    const timed = new PostgresConnection(
      resolvePostgresOptions({ connectionString: db.url(), clock, pruneIntervalInMilliseconds: 50 }),
    );
    await timed.connect();
    try {
      await store.commit('soon', change('z'), 1_000);
      clock.advance(1_001);
      const left = () => db.query('SELECT 1 FROM nest_sessions WHERE session_key = $1', ['soon']);
      // Polled: the 50 ms timer may run late on a loaded machine; without the prune the row stays for good.
      for (let waited = 0; (await left()).length > 0 && waited < 5_000; waited += 50)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await left()).toEqual([]);
    } finally {
      await timed.close();
    }
  });
});

describe('postgres.maxConnections', () => {
  it("bounds the module's pool: concurrent requests share that many connections to the database", async () => {
    // docs/postgres.md: "size of the module's pool"; what an app sizes against the server's max_connections.
    const db = await TestDatabase.create();
    const counter = new pg.Client({ host: db.host, port: db.port, user: db.user, database: 'postgres' });
    const { app, url } = await startSessionApp({
      secrets: SECRETS,
      postgres: { connectionString: db.url(), maxConnections: 2, pruneIntervalInMilliseconds: 0 },
    });
    try {
      await counter.connect();
      const cookies = await Promise.all(
        Array.from({ length: 20 }, async () =>
          cookiePair(await request(url).get('/counter').expect(200), COOKIE),
        ),
      );
      // Loads, plain commits and function commits (removals) at once, from sessions of their own.
      await Promise.all(
        cookies.flatMap((cookie, i) => [
          request(url).get('/counter').set('Cookie', cookie).expect(200),
          request(url).post('/clear').set('Cookie', cookie).expect(200),
          request(url).post(`/set/k${i}`).set('Cookie', cookie).expect(200),
        ]),
      );
      // The pool keeps its idle connections (pg's idle timeout is 10 s): every one it opened is still there.
      const { rows } = await counter.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
        [db.name],
      );
      expect(rows[0].n).toBeGreaterThanOrEqual(1);
      expect(rows[0].n).toBeLessThanOrEqual(2);
    } finally {
      await counter.end();
      await app.close();
      await db.drop();
    }
  });
});
