import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair, sessionKeyOf } from '../support/cookie-jar.js';
import { TestDatabase } from '../support/postgres/index.js';
import { StallProxy } from '../support/stall-proxy.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Pg7vT2xZ9pLr4nYc1sWd8hJk3fBg6aEu0iOt5yRz2K'];
const TIMEOUT = 1_500;
/** Past one bounded statement (the operation timeout and its check interval), short of two. */
const IO_TIMEOUT = 1_700;
/** The first statement is held this long: slow, but answered within the operation timeout. */
const FIRST_HOLD = 1_100;
/** The second statement is held past the operation timeout. */
const SECOND_HOLD = 2_500;
/** Slack over IO_TIMEOUT for a loaded machine; answering after both statements takes FIRST_HOLD + TIMEOUT. */
const SLACK = 700;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `session.ioTimeout` bounds each store call (docs/session.md). A PostgreSQL load may be followed by its slide, and a
 * commit whose plain statement refused (near a limit, a loaded session's row gone) by the commit function: two bounded
 * statements one after the other, so such a call may take twice the operation timeout. The store claimed one
 * (`settlesWithinMs`), the module armed no ioTimeout of its own, and the request answered after both.
 */
describe('PostgreSQL store: session.ioTimeout bounds a call made of two statements', () => {
  let db: TestDatabase;
  let proxy: StallProxy;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    db = await TestDatabase.create();
    proxy = await StallProxy.start({ host: db.host, port: db.port });
    const started = await startSessionApp({
      secrets: SECRETS,
      postgres: { connectionString: db.url(proxy), operationTimeoutInMilliseconds: TIMEOUT },
      session: { ioTimeout: IO_TIMEOUT, maxSessionBytes: 2_000 },
    });
    app = started.app;
    url = started.url;
  });
  afterAll(async () => {
    await app.close();
    await proxy.stop();
    await db.drop();
  });

  const stored = async (cookie: string): Promise<Record<string, string>> =>
    (
      await db.query<{ data: Record<string, string> }>(
        'SELECT data FROM nest_sessions WHERE session_key = $1',
        [sessionKeyOf(cookie)],
      )
    )[0].data;

  /** Holds the statement named `first` a little, then the one named `second` past the timeout; answers when and how. */
  async function slowThenStalled(
    first: string,
    second: string,
    send: () => Promise<{ status: number }>,
  ): Promise<{ status: number; ms: number }> {
    const firstHold = proxy.holdWhen(first, FIRST_HOLD);
    const started = Date.now();
    const answer = send().then((res) => ({ status: res.status, ms: Date.now() - started }));
    await firstHold.answered;
    // Armed before the app reads the first statement's reply, so before it sends the second.
    const secondHold = proxy.holdWhen(second, SECOND_HOLD);
    const result = await answer;
    if (!secondHold.engaged) proxy.disarm();
    expect(secondHold.engaged).toBe(true); // the second statement was sent, and stalled
    await secondHold.released;
    await sleep(200);
    return result;
  }

  it('a load followed by its slide (a session slid long ago): 503 at ioTimeout', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    await db.query(
      `UPDATE nest_sessions SET expires_at = expires_at - interval '5 minutes' WHERE session_key = $1`,
      [sessionKeyOf(cookie)],
    );
    const { status, ms } = await slowThenStalled('nss_load', 'nss_refresh', () =>
      request(url).get('/read').set('Cookie', cookie),
    );
    expect({ status, withinIoTimeout: ms < IO_TIMEOUT + SLACK }).toEqual({
      status: 503,
      withinIoTimeout: true,
    });
  });

  it('a commit whose plain UPDATE refused near a limit, then the function: 503 at ioTimeout, nothing applied', async () => {
    const cookie = cookiePair(
      await request(url)
        .post('/set/x')
        .send({ value: 'x'.repeat(1_200) })
        .expect(200),
      COOKIE,
    );
    const { status, ms } = await slowThenStalled('nss_commit_update', 'nss_commit', () =>
      request(url)
        .post('/set/z')
        .set('Cookie', cookie)
        .send({ value: 'z'.repeat(400) }),
    );
    expect({ status, withinIoTimeout: ms < IO_TIMEOUT + SLACK }).toEqual({
      status: 503,
      withinIoTimeout: true,
    });
    expect(Object.keys(await stored(cookie))).toEqual(['x']); // the function reached the database late
  });
});
