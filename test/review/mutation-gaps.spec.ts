/**
 * Tests for behaviours whose mutants survived the existing suites (see the review's mutation table):
 * delta commits under real overlap, remove() and clear() reaching the store, and read-only requests
 * sliding the idle timeout, on memory and on Redis.
 */
import { Controller, HttpCode, Param, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ManualClock, Session } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';

const COOKIE = '.Nest.Session';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

@Controller('gap')
class GapController {
  /** Loads, waits (so overlapping requests really overlap), then sets one key. */
  @Post('slow-set/:key')
  @HttpCode(200)
  async slowSet(@Session() session: Session, @Param('key') key: string) {
    await sleep(100);
    session.setString(key, key);
    return { ok: true };
  }

  @Post('remove/:key')
  @HttpCode(200)
  remove(@Session() session: Session, @Param('key') key: string) {
    session.remove(key);
    return { keys: session.keys };
  }
}

function suite(
  name: string,
  start: () => Promise<{ app: INestApplication; url: string; stop?: () => Promise<void> }>,
) {
  describe(name, () => {
    let app: INestApplication;
    let url: string;
    let stop: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      ({ app, url, stop } = await start());
    });
    afterAll(async () => {
      await app.close();
      await stop?.();
    });

    it('overlapping requests that each set a different key all persist (delta commit, not whole record)', async () => {
      const cookie = cookiePair(await request(url).post('/set/seed').expect(200), COOKIE);
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          request(url).post(`/gap/slow-set/k${i}`).set('Cookie', cookie).expect(200),
        ),
      );
      const { body } = await request(url).get('/keys').set('Cookie', cookie).expect(200);
      expect(Object.keys(body).sort()).toEqual(
        ['seed', ...Array.from({ length: 10 }, (_, i) => `k${i}`)].sort(),
      );
    });

    it('remove() deletes the key from the store, leaving the others', async () => {
      const cookie = cookiePair(await request(url).post('/set/a').expect(200), COOKIE);
      await request(url).post('/set/b').set('Cookie', cookie).expect(200);
      await request(url)
        .post('/gap/remove/a')
        .set('Cookie', cookie)
        .expect(200, { keys: ['b'] });
      await request(url).get('/keys').set('Cookie', cookie).expect(200, { b: 'b' });
    });

    it('clear() deletes every key from the store', async () => {
      const cookie = cookiePair(await request(url).post('/set/a').expect(200), COOKIE);
      await request(url).post('/set/b').set('Cookie', cookie).expect(200);
      await request(url).post('/clear').set('Cookie', cookie).expect(200, { keys: [] });
      await request(url).get('/keys').set('Cookie', cookie).expect(200, {});
    });
  });
}

suite('mutation gaps: memory store', async () => startSessionApp({}, { controllers: [GapController] }));

let redis: RedisServerProcess;
suite('mutation gaps: Redis store', async () => {
  redis = await RedisServerProcess.start();
  const { app, url } = await startSessionApp(
    { redis: { host: redis.host, port: redis.port, applicationName: 'gap' }, session: { idleTimeout: 5000 } },
    { controllers: [GapController] },
  );
  return { app, url, stop: () => redis.stop() };
});

describe('mutation gaps: read-only requests slide the idle timeout', () => {
  it('memory: a session only read every 15 minutes stays alive', async () => {
    const clock = new ManualClock(Date.now());
    const { app, url } = await startSessionApp({ memory: { clock } });
    try {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      for (let i = 0; i < 3; i++) {
        clock.advance(15 * 60_000);
        await request(url).get('/read').set('Cookie', cookie).expect(200);
      }
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    } finally {
      await app.close();
    }
  });

  it('Redis: loading the session resets its TTL to the idle timeout (in the same round trip)', async () => {
    const server = await RedisServerProcess.start();
    const { app, url } = await startSessionApp({
      redis: { host: server.host, port: server.port, applicationName: 'slide' },
      session: { idleTimeout: 5000 },
    });
    try {
      const res = await request(url).get('/counter');
      const key = cookiePair(res, COOKIE).split('=')[1].split('.')[0];
      await sleep(1200);
      const before = await server.admin().pttl(`{slide_${key}}_Data`);
      await request(url).get('/read').set('Cookie', cookiePair(res, COOKIE)).expect(200);
      const after = await server.admin().pttl(`{slide_${key}}_Data`);
      expect(before).toBeLessThan(4000);
      expect(after).toBeGreaterThan(4500);
    } finally {
      await app.close();
      await server.stop();
    }
  });
});
