/**
 * The PostgreSQL store behind PgBouncer in transaction mode (`pool_mode = transaction`: each transaction on whichever
 * server connection is free), with `preparedStatements: false`: two instances on fewer server connections than
 * their pools open, so one app connection's statements run on different server connections. Named prepared
 * statements (the default) fail there: a statement prepared on one server connection does not exist on the next.
 */
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { PgBouncerProcess, TestDatabase } from '../support/postgres/index.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';

const SECRETS = ['Tq8wR3xZ5pLm1nYc7sWd2hJk4fBg6aEu0iOt9yRz3V'];
const COOKIE = '.Nest.Session';
const BROWSERS = 16;
const INCREMENTS = 8;

describe('behind PgBouncer in transaction mode, with preparedStatements: false', () => {
  let db: TestDatabase;
  let bouncer: PgBouncerProcess;
  const apps: INestApplication[] = [];
  let a: string;
  let b: string;
  let locked: string;

  beforeAll(async () => {
    db = await TestDatabase.create();
    bouncer = await PgBouncerProcess.start({
      mode: 'transaction',
      serverConnections: 2,
      upstream: { host: db.host, port: db.port, user: db.user },
    });
    const start = async (lock: boolean) => {
      const started = await startSessionApp({
        secrets: SECRETS,
        postgres: {
          connectionString: bouncer.url(db.name, db.user),
          preparedStatements: false,
          maxConnections: 6,
          operationTimeoutInMilliseconds: 5_000,
        },
        session: lock ? { lock: true } : undefined,
      });
      apps.push(started.app);
      return started.url;
    };
    a = await start(false);
    b = await start(false);
    locked = await start(true);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await bouncer?.stop();
    await db?.drop();
  });

  it(`${BROWSERS} browsers counting ${INCREMENTS} times each on two instances at once: every increment answered 200 and counted`, async () => {
    const browse = async () => {
      let cookie = '';
      const statuses: number[] = [];
      for (let i = 0; i < INCREMENTS; i++) {
        const response = await request(i % 2 === 0 ? a : b)
          .get('/counter')
          .set('Cookie', cookie);
        statuses.push(response.status);
        cookie ||= cookiePair(response, COOKIE);
      }
      const last = await request(a).get('/read').set('Cookie', cookie);
      return { statuses, count: (last.body as { count?: number }).count };
    };
    const results = await Promise.all(Array.from({ length: BROWSERS }, browse));
    expect(results.flatMap((r) => r.statuses).filter((status) => status !== 200)).toEqual([]);
    expect(results.map((r) => r.count)).toEqual(Array.from({ length: BROWSERS }, () => INCREMENTS));
  });

  it('a sign-in (regenerate) on one instance moves the session; the other reads it under the new key, not the old one', async () => {
    const cookie = cookiePair(await request(a).post('/set/cart').send({ value: 'item' }).expect(200), COOKIE);
    const signedIn = cookiePair(
      await request(b).post('/regenerate').set('Cookie', cookie).expect(200),
      COOKIE,
    );
    expect(signedIn).not.toBe(cookie);
    expect((await request(a).get('/keys').set('Cookie', signedIn).expect(200)).body).toEqual({
      cart: 'item',
    });
    expect((await request(a).get('/keys').set('Cookie', cookie).expect(200)).body).toEqual({});
  });

  it('session.lock: concurrent increments of one session are serialised, none lost', async () => {
    const cookie = cookiePair(await request(locked).get('/counter').expect(200), COOKIE);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => request(locked).get('/counter').set('Cookie', cookie)),
    );
    expect(answers.map((r) => r.status)).toEqual(Array.from({ length: 6 }, () => 200));
    expect((await request(locked).get('/read').set('Cookie', cookie).expect(200)).body).toMatchObject({
      count: 7,
    });
  });
});
