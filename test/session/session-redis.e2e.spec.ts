import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { CommandMonitor, RedisServerProcess } from '../support/redis/index.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { gate, GatedSessionController } from '../support/apps/gated-session.controller.js';
import { cookiePair, findSetCookie } from '../support/cookie-jar.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['k8JdQ0wZr4Vn1pYt6sXc2bLm9gHf3aEu7iOq5yTz0R'];

/** The session key in a `name=value` session cookie pair (the value is `<key>.<signature>`). */
const keyOf = (pair: string) => pair.slice(COOKIE.length + 1, pair.lastIndexOf('.'));

describe('sessions on Redis', () => {
  let server: RedisServerProcess;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    ({ app, url } = await startSessionApp(
      {
        secrets: SECRETS,
        redis: { host: server.host, port: server.port, applicationName: 'e2e' },
      },
      { controllers: [GatedSessionController] },
    ));
  });
  afterAll(async () => {
    await app.close();
    await server.stop();
  });

  /** The commands Redis received while `run` ran, and in the 20 ms after (work after the response). */
  async function commandsDuring(run: () => Promise<void>): Promise<string[]> {
    const monitor = await CommandMonitor.start(server);
    try {
      await monitor.settle();
      monitor.reset();
      await run();
      await new Promise((r) => setTimeout(r, 20));
      await monitor.settle();
      return monitor.commands();
    } finally {
      await monitor.stop();
    }
  }

  it('keeps one session in one hash {<applicationName>_<key>}_Data with the idle timeout as TTL', async () => {
    const res = await request(url).get('/counter').expect(200, { count: 1 });
    const signed = cookiePair(res, COOKIE).split('=')[1];
    const key = signed.slice(0, signed.lastIndexOf('.'));
    const redisKey = `{e2e_${key}}_Data`;
    expect(await server.admin().type(redisKey)).toBe('hash');
    expect(await server.admin().hkeys(redisKey)).toEqual(['count']);
    const ttl = await server.admin().pttl(redisKey);
    expect(ttl).toBeGreaterThan(19 * 60_000);
    expect(ttl).toBeLessThanOrEqual(20 * 60_000);
  });

  it('commits a change made in the same turn as res.send(); refuses one made after the commit (SessionResponseStartedError) instead of losing it', async () => {
    const res = await request(url).post('/after-end').expect(201, 'sent');
    await request(url).get('/late-change').expect(200, { error: 'SessionResponseStartedError' });
    const { body } = await request(url).get('/keys').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(body).toEqual({ before: 'kept', 'same-turn': 'kept' });
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

  it('round trips: untouched <= 1 (0 when slid recently), read-only 1, read + write 2', async () => {
    const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    const monitor = await CommandMonitor.start(server);
    try {
      const measure = async (path: string) => {
        await monitor.settle();
        monitor.reset();
        await request(url).get(path).set('Cookie', cookie).expect(200);
        await new Promise((r) => setTimeout(r, 20));
        await monitor.settle();
        return monitor.commands();
      };
      // Each round trip is one script call (ioredis sends EVAL the first time per connection, then EVALSHA).
      const script = expect.stringMatching(/^EVAL(SHA)?$/);
      expect(await measure('/counter')).toEqual([script, script]); // load+slide, commit
      expect(await measure('/read')).toEqual([script]); // load+slide
      expect(await measure('/untouched')).toEqual([]); // slid moments ago by this instance
    } finally {
      await monitor.stop();
    }
  });

  it('a load slides: an instance that only read a session (written by another) sends nothing for the next request that does not touch it', async () => {
    const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    const { app: other, url: otherUrl } = await startSessionApp({
      secrets: SECRETS,
      redis: { host: server.host, port: server.port, applicationName: 'e2e' },
    });
    try {
      const script = expect.stringMatching(/^EVAL(SHA)?$/);
      const read = await commandsDuring(async () => {
        await request(otherUrl).get('/read').set('Cookie', cookie).expect(200);
      });
      expect(read).toEqual([script]); // load+slide, nothing committed
      const untouched = await commandsDuring(async () => {
        await request(otherUrl).get('/untouched').set('Cookie', cookie).expect(200);
      });
      expect(untouched).toEqual([]); // slid by that load moments ago
    } finally {
      await other.close();
    }
  });

  it('a session with its id, emptied and committed by the request: one commit, then nothing (its id is kept for a next value, not written alone)', async () => {
    const cookie = cookiePair(await request(url).post('/set/a').send({ value: 'x' }).expect(200), COOKIE);
    await request(url).get('/id').set('Cookie', cookie).expect(200); // the id is stored beside a
    gate('emptied-once').release();
    const commands = await commandsDuring(async () => {
      await request(url).post('/gated/emptied-once/remove/a?commit=1').set('Cookie', cookie).expect(200);
    });
    const script = expect.stringMatching(/^EVAL(SHA)?$/);
    expect(commands).toEqual([script, script]); // load+slide, the emptying commit
    expect(await server.admin().exists(`{e2e_${keyOf(cookie)}}_Data`)).toBe(0);
  });

  it("a request whose cookie's session is gone and that writes one: 2 round trips (the commit script reads the key's ended mark itself); one that removes a value it does not hold: 2", async () => {
    const cookie = cookiePair(await request(url).post('/set/a').send({ value: 'x' }).expect(200), COOKIE);
    gate('gone-once').release();
    await request(url).post('/gated/gone-once/remove/a').set('Cookie', cookie).expect(200);
    const commands = await commandsDuring(async () => {
      await request(url).post('/set/b').set('Cookie', cookie).send({ value: 'y' }).expect(200);
    });
    const script = expect.stringMatching(/^EVAL(SHA)?$/);
    expect(commands).toEqual([script, script]); // load+slide, the commit (which finds no mark)
    expect((await request(url).get('/keys').set('Cookie', cookie).expect(200)).body).toEqual({ b: 'y' });
    // Removing a value a gone session does not hold: the load, a read of the mark (nothing to write).
    await request(url).post('/gated/gone-once/remove/b').set('Cookie', cookie).expect(200);
    const removals = await commandsDuring(async () => {
      await request(url).post('/gated/gone-once/remove/b').set('Cookie', cookie).expect(200);
    });
    expect(removals).toEqual([script, script]);
  });

  it('a read-only request re-signs a cookie made under an older secret and writes nothing', async () => {
    const { app: rotating, url: rotatingUrl } = await startSessionApp({
      secrets: ['Wc5nR2xKq8Lm3Tz7Yb1Vd6Hs9Fg4Ja0Pu2Ei5Ok8Qw3N', ...SECRETS],
      redis: { host: server.host, port: server.port, applicationName: 'e2e' },
    });
    try {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      let resigned = '';
      const commands = await commandsDuring(async () => {
        const read = await request(rotatingUrl).get('/read').set('Cookie', cookie).expect(200);
        expect(read.body).toMatchObject({ available: true, count: 1 });
        resigned = cookiePair(read, COOKIE);
      });
      expect(resigned).not.toBe(cookie);
      expect(keyOf(resigned)).toBe(keyOf(cookie));
      // The load, and a read of the moved mark: a sign-in that moved the session meanwhile is not undone.
      expect(commands).toEqual([
        expect.stringMatching(/^EVAL(SHA)?$/),
        expect.stringMatching(/^EVAL(SHA)?$/),
      ]);

      const again = await request(rotatingUrl).get('/read').set('Cookie', resigned).expect(200);
      expect(again.body).toMatchObject({ count: 1 });
      expect(findSetCookie(again, COOKIE)).toBeUndefined();
    } finally {
      await rotating.close();
    }
  });

  it('with session.lock, a read-only request releases its lock before the response (no write, no wait for the next)', async () => {
    const { app: locking, url: lockingUrl } = await startSessionApp({
      secrets: SECRETS,
      redis: { host: server.host, port: server.port, applicationName: 'e2e' },
      session: { lock: { acquireTimeout: 500 } }, // ttl: the default 30 s
    });
    try {
      const cookie = cookiePair(await request(lockingUrl).get('/counter'), COOKIE);
      const lockKey = `{e2e_${keyOf(cookie)}}_Lock`;
      const read = await request(lockingUrl).get('/read').set('Cookie', cookie).expect(200);
      expect(read.body).toMatchObject({ available: true, count: 1 });
      expect(findSetCookie(read, COOKIE)).toBeUndefined();
      expect(await server.admin().exists(lockKey)).toBe(0);
      // A lock left behind would make this one wait its acquireTimeout and answer 503.
      await request(lockingUrl).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    } finally {
      await locking.close();
    }
  });

  it('an untouched request slides the idle timeout when this instance has not slid it recently', async () => {
    const { app: other, url: otherUrl } = await startSessionApp({
      secrets: SECRETS,
      redis: { host: server.host, port: server.port, applicationName: 'e2e' },
    });
    try {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      const commands = await commandsDuring(async () => {
        await request(otherUrl).get('/untouched').set('Cookie', cookie).expect(200);
      });
      expect(commands).toEqual(['PEXPIRE']);
    } finally {
      await other.close();
    }
  });

  it('regenerate writes the data under a new key and deletes the old one', async () => {
    const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    const res = await request(url).post('/regenerate').set('Cookie', cookie).expect(200);
    const next = cookiePair(res, COOKIE);
    const oldKey = cookie.split('=')[1].split('.')[0];
    expect(await server.admin().exists(`{e2e_${oldKey}}_Data`)).toBe(0);
    await request(url).get('/counter').set('Cookie', next).expect(200, { count: 2 });
    expect(findSetCookie(res, COOKIE)).toBeDefined();
  });
});
