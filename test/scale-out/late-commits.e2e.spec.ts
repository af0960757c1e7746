import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { RedisServerProcess } from '../support/redis/index.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { gate, GatedSessionController, type Gate } from '../support/apps/gated-session.controller.js';
import { cookiePair } from '../support/cookie-jar.js';
import { StallProxy } from '../support/stall-proxy.js';
import { expectEndingAnswered503ToDeleteNothing } from '../support/held-session-ending.js';
import { waitUntil } from './support/load.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Vb3nK8qLw1Zx5cRt9yHm2pJd6sFg0aEu4iOe7uTy3W'];
const APP = 'late';
/** Instance a gives up on a Redis operation after this long (its request answers 503). */
const TIMEOUT = 400;
/** How long a commit is held: well past TIMEOUT, so it reaches Redis after the 503 left. */
const HOLD = 900;
const TRIALS = 4;

/**
 * Resolves when the request reached the gate; fails at once (instead of waiting for the test's
 * timeout) when it answered first, e.g. its load timed out on a machine too busy for TIMEOUT.
 */
function reachedGate(g: Gate, pending: Promise<{ status: number }>): Promise<void> {
  return Promise.race([
    g.reached(1),
    pending.then((res) => {
      throw new Error(`the request answered ${res.status} before reaching the gate`);
    }),
  ]);
}

function sessionKeyOf(cookie: string): string {
  const signed = cookie.slice(cookie.indexOf('=') + 1);
  return signed.slice(0, signed.lastIndexOf('.'));
}

/**
 * What a 503 from a commit means: it did not apply, and it will not apply later. The client-side
 * operation timeout only stops waiting; the bytes still reach Redis, late (a stalled socket, a paused
 * server). The commit script carries a deadline in Redis's clock and refuses to run past it, so a
 * late commit can never overwrite a newer write that was answered 200.
 */
describe.each([
  ['without the near cache', false],
  ['with the near cache', true],
])('late commits (%s): a commit answered 503 never lands', (_name, nearCache) => {
  let server: RedisServerProcess;
  let proxy: StallProxy;
  const apps: INestApplication[] = [];
  /** Instance a reaches Redis through the stall proxy, with a short operation timeout. */
  let a: string;
  /** Instance b reaches Redis directly. */
  let b: string;
  /** Like a, with retries: each try of a commit carries its own deadline. */
  let retrying: string;
  /** Through the stall proxy, a long operation timeout and a short session.ioTimeout (the app stops waiting first). */
  let shortIo: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    proxy = await StallProxy.start(server);
    const start = async (port: number, timeout?: number, retry?: number, ioTimeout?: number) => {
      const started = await startSessionApp(
        {
          secrets: SECRETS,
          ...(ioTimeout === undefined ? {} : { session: { ioTimeout } }),
          redis: {
            host: server.host,
            port,
            applicationName: APP,
            operationTimeoutInMilliseconds: timeout,
            retryTimeoutInMilliseconds: retry,
            nearCache,
          },
        },
        { controllers: [GatedSessionController] },
      );
      apps.push(started.app);
      return started.url;
    };
    a = await start(proxy.port, TIMEOUT);
    b = await start(server.port);
    retrying = await start(proxy.port, TIMEOUT, 300);
    shortIo = await start(proxy.port, 5_000, undefined, TIMEOUT);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await proxy.stop();
    await server.stop();
  });

  const stored = (cookie: string, field: string) =>
    server.admin().hget(`{${APP}_${sessionKeyOf(cookie)}}_Data`, field);

  it(`stalled connection: a 503 commit, then a newer write answered 200, then the stalled commit reaches Redis: the newer write stays (${TRIALS} trials)`, async () => {
    let overwritten = 0;
    let trials = 0;
    for (let i = 0; trials < TRIALS && i < 3 * TRIALS; i++) {
      const cookie = cookiePair(
        await request(b).post('/set/x').send({ value: 'initial' }).expect(200),
        COOKIE,
      );
      const hold = proxy.holdWhen(`old-${i}-${nearCache}`, HOLD);
      await request(a)
        .post('/set/x')
        .set('Cookie', cookie)
        .send({ value: `old-${i}-${nearCache}` })
        .expect(503);
      if (!hold.engaged) {
        // The 503 came from a load slowed past the timeout on a busy machine, not from the held commit:
        // nothing was held, so this attempt tests nothing. Count only attempts whose commit was held.
        proxy.disarm();
        continue;
      }
      trials++;
      await request(b)
        .post('/set/x')
        .set('Cookie', cookie)
        .send({ value: `new-${i}` })
        .expect(200);
      await hold.answered; // the held commit ran in Redis (and was answered) after the 200
      if ((await stored(cookie, 'x')) !== `new-${i}`) overwritten++;
    }
    expect(trials).toBe(TRIALS); // the 503 came from the held commit in TRIALS attempts
    expect(`${overwritten}/${TRIALS} overwritten`).toBe(`0/${TRIALS} overwritten`);
  });

  it(`CLIENT PAUSE: ${TRIALS} of ${TRIALS} commits answered 503 while Redis was paused are not applied once it resumes`, async () => {
    let applied = 0;
    for (let i = 0; i < TRIALS; i++) {
      const cookie = cookiePair(
        await request(b).post('/set/x').send({ value: 'initial' }).expect(200),
        COOKIE,
      );
      const name = `pause-${i}-${nearCache}`;
      const g = gate(name);
      // Loaded before the pause; the commit is sent while Redis holds every write (scripts included).
      const late = request(a)
        .post(`/gated/${name}/set/x`)
        .set('Cookie', cookie)
        .send({ value: `paused-${i}` })
        .then((res) => res);
      await reachedGate(g, late);
      await server.admin().call('CLIENT', 'PAUSE', String(10_000), 'WRITE');
      try {
        g.release();
        expect((await late).status).toBe(503);
      } finally {
        // The paused commit runs now, before any command sent after this answer.
        await server.admin().call('CLIENT', 'UNPAUSE');
      }
      await server.admin().set('after-unpause', String(i)); // a write: runs after the unpaused ones
      if ((await stored(cookie, 'x')) !== 'initial') applied++;
    }
    expect(`${applied}/${TRIALS} applied`).toBe(`0/${TRIALS} applied`);
  });

  it('with retries (retryTimeoutInMilliseconds 300): every try of a commit answered 503 is refused when it arrives late', async () => {
    const cookie = cookiePair(await request(b).post('/set/x').send({ value: 'initial' }).expect(200), COOKIE);
    // Two tries (at 0 and, retryTimeout having run out, a last one at ~400 ms), each given up after 400 ms; both held until 1600 ms.
    const hold = proxy.holdWhen(`retried-${nearCache}`, 1600);
    await request(retrying)
      .post('/set/x')
      .set('Cookie', cookie)
      .send({ value: `retried-${nearCache}` })
      .expect(503);
    if (!hold.engaged) proxy.disarm();
    expect(hold.engaged).toBe(true);
    await request(b).post('/set/x').set('Cookie', cookie).send({ value: 'newer' }).expect(200);
    await hold.released;
    await request(retrying).get('/keys').set('Cookie', cookie).expect(200); // after the held tries on that socket
    expect(await stored(cookie, 'x')).toBe('newer');
  });

  it.each(['abandon', 'regenerate'] as const)(
    'a sign-out or sign-in (%s) answered 503 at a session.ioTimeout shorter than the Redis timeouts deletes nothing once Redis answers',
    (ending) =>
      expectEndingAnswered503ToDeleteNothing(
        { stalling: shortIo, direct: b, proxy, holdMs: HOLD, stored },
        ending,
        `${ending}-${nearCache}`,
      ),
  );

  /**
   * A request on `url` (`send`, given the cookie) starts a session under a cookie whose session is gone; its first
   * write applies at once but its reply comes after the app gave up on it (TIMEOUT), and another tab signs in from
   * that cookie before the request ends. Answers the request's reply and the sign-in's cookie.
   */
  async function startWhileSignedInElsewhere(
    marker: string,
    written: { field: string; value: string },
    send: (cookie: string) => Promise<request.Response>,
  ): Promise<{ answered: request.Response; renewed: string }> {
    const cookie = cookiePair(await request(b).post('/set/x').send({ value: 'seed' }).expect(200), COOKIE);
    await request(b).post('/clear').set('Cookie', cookie).expect(200); // the cookie stays, its session is gone
    const hold = proxy.holdRepliesWhen(marker, TIMEOUT + 300);
    const pending = send(cookie);
    const applied = async () => (await stored(cookie, written.field)) === written.value;
    expect(await waitUntil(applied, TIMEOUT, 5)).toBe(true);
    // Another tab signs in from the same cookie: the session moves, with the value.
    const renewed = cookiePair(
      await request(b).post('/regenerate').set('Cookie', cookie).expect(200),
      COOKIE,
    );
    const answered = await pending;
    await hold.released;
    expect(hold.engaged).toBe(true);
    return { answered, renewed };
  }

  it("a session's first write under a cookie whose session was gone, applied by a try whose reply came late, is not refused on its retry by a sign-in that moved it in between", async () => {
    const marker = `applied-late-${nearCache}`;
    const { answered, renewed } = await startWhileSignedInElsewhere(
      marker,
      { field: 'y', value: marker },
      (cookie) =>
        request(retrying)
          .post('/set/y')
          .set('Cookie', cookie)
          .send({ value: marker })
          .then((r) => r),
    );
    expect(answered.status).toBe(200); // y is saved: in the session the browser keeps
    expect(await stored(renewed, 'y')).toBe(marker);
  });

  it("an explicit commit that started a session under a gone cookie's key and timed out (it applied) is not judged again at the end of the request, though a sign-in moved it meanwhile", async () => {
    const { answered, renewed } = await startWhileSignedInElsewhere(
      'explicit',
      { field: 'name', value: 'explicit' },
      (cookie) =>
        request(shortIo)
          .post('/explicit-commit')
          .set('Cookie', cookie)
          .then((r) => r),
    );
    expect(answered.body).toEqual({ committed: false, error: 'SessionUnavailableError' }); // it timed out
    expect(answered.status).toBe(200); // the end-of-request commit applied again, not refused as moved
    expect(await stored(renewed, 'name')).toBe('explicit');
  });

  it('a move whose write under the new key landed but whose reply came after the timeout (503): that copy is deleted, the session stays under the old key alone', async () => {
    const marker = `moved-late-${nearCache}`;
    const cookie = cookiePair(await request(a).post('/set/cart').send({ value: marker }).expect(200), COOKIE);
    const sessions = () => server.admin().keys(`{${APP}_*}_Data`);
    const before = (await sessions()).sort();
    // The rewrite under the new key carries the value: it runs at once, its reply (and every later one) comes late.
    const hold = proxy.holdRepliesWhen(marker, HOLD);
    const moved = await request(a).post('/regenerate').set('Cookie', cookie);
    expect(moved.status).toBe(503);
    expect(moved.headers['set-cookie']).toBeUndefined();
    await hold.released;
    expect(hold.engaged).toBe(true);
    expect(await waitUntil(async () => (await sessions()).length === before.length, 2_000)).toBe(true);
    expect((await sessions()).sort()).toEqual(before);
    expect(await stored(cookie, 'cart')).toBe(marker);
  });

  it('a commit that reaches Redis in time is applied (the deadline refuses only late ones)', async () => {
    const cookie = cookiePair(await request(a).post('/set/x').send({ value: 'v1' }).expect(200), COOKIE);
    const hold = proxy.holdWhen(`in-time-${nearCache}`, Math.floor(TIMEOUT / 5));
    await request(a)
      .post('/set/x')
      .set('Cookie', cookie)
      .send({ value: `in-time-${nearCache}` })
      .expect(200);
    await hold.answered;
    expect(await stored(cookie, 'x')).toBe(`in-time-${nearCache}`);
  });
});
