import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisCacheOptions } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair } from '../support/cookie-jar.js';
import { freePort, RedisServerProcess } from '../support/redis/index.js';

/**
 * Redis Sentinel (docs/redis.md, "Redis Sentinel"): the module takes an ioredis client built with `sentinels` and
 * `name` as `client`. Startup advises `failoverDetector`, and names the fix for the Sentinel setups it cannot use
 * (Sentinel options given to the module, the Sentinel's port or a replica's given as the server's). A master killed
 * under it: the app answers again on the promoted replica without a restart, and with `waitForReplicas: 1` every
 * acknowledged write is there.
 */
const SECRETS = ['Hs2kLq9vTz4wNc7pXb1mRd6gYf3jUa8eKo5iQt0Z2V'];
const COOKIE = '.Nest.Session';
const NAME = 'sessions-main';

describe('Redis Sentinel: an ioredis client built with sentinels, passed as client', () => {
  let master: RedisServerProcess;
  let replica: RedisServerProcess;
  let sentinel: RedisServerProcess;
  const apps: INestApplication[] = [];
  const clients: Redis[] = [];

  beforeAll(async () => {
    master = await RedisServerProcess.start();
    replica = await RedisServerProcess.start({
      extraArgs: ['--replicaof', master.host, String(master.port)],
    });
    await waitFor(async () => /master_link_status:up/.test(await replica.admin().info('replication')));
    sentinel = await RedisServerProcess.start({ sentinelOf: { name: NAME, master } });
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const client of clients) if (client.status !== 'end') client.disconnect();
    await sentinel.stop();
    await replica.stop();
    await master.stop();
  });

  function sentinelClient(extra: RedisOptions = {}): Redis {
    const client = new Redis({
      sentinels: [{ host: sentinel.host, port: sentinel.port }],
      name: NAME,
      lazyConnect: true,
      disconnectTimeout: 100, // a closed client's timer would keep Jest from exiting for 2 s
      ...extra,
    });
    clients.push(client);
    return client;
  }

  async function start(redis: RedisCacheOptions, logger = new CaptureLogger()) {
    const started = await startSessionApp({ secrets: SECRETS, redis }, { logger });
    apps.push(started.app);
    return { ...started, logger };
  }

  const failure = (redis: RedisCacheOptions) =>
    startSessionApp({ secrets: SECRETS, redis }).then(
      async ({ app }) => {
        await app.close();
        return 'started';
      },
      (error: unknown) => (error as Error).message,
    );

  it('serves sessions; startup advises failoverDetector when the client lacks it, and says nothing when it has it', async () => {
    const without = await start({ client: sentinelClient() });
    const cookie = cookiePair(await request(without.url).get('/counter').expect(200, { count: 1 }), COOKIE);
    await request(without.url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    expect(without.logger.has(/^\[RedisSentinelWithoutFailoverDetector\] .*failoverDetector: true/)).toBe(
      true,
    );

    const withDetector = await start({ client: sentinelClient({ failoverDetector: true }) });
    await request(withDetector.url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
    expect(withDetector.logger.has(/RedisSentinelWithoutFailoverDetector/)).toBe(false);
  });

  it('startup names the fix for what it cannot use: Sentinel options, a redis+sentinel url, the Sentinel or a replica as the server, Sentinels that do not answer', async () => {
    const advice =
      /pass an ioredis client built with \{ sentinels.*failoverDetector: true \} as client \(docs\/redis\.md, "Redis Sentinel"\)/;
    const options = {
      sentinels: [{ host: sentinel.host, port: sentinel.port }],
    } as unknown as RedisCacheOptions;
    expect(await failure(options)).toMatch(
      new RegExp(`Redis option redis\\.sentinels is not an option here: .*${advice.source}`),
    );
    expect(await failure({ url: `redis+sentinel://${sentinel.host}:${sentinel.port}` })).toMatch(advice);
    expect(await failure({ host: sentinel.host, port: sentinel.port })).toMatch(
      new RegExp(`Redis at ${sentinel.host}:${sentinel.port} is a Redis Sentinel.*${advice.source}`),
    );
    expect(await failure({ host: replica.host, port: replica.port })).toMatch(
      new RegExp(
        `Redis at ${replica.host}:${replica.port} is a replica: it refuses writes \\(READONLY\\).*${advice.source}`,
      ),
    );
    const nobody = await freePort();
    const client = new Redis({
      sentinels: [{ host: '127.0.0.1', port: nobody }],
      name: NAME,
      lazyConnect: true,
      disconnectTimeout: 100,
      sentinelRetryStrategy: () => null,
    });
    clients.push(client);
    expect(await failure({ client, connectionTimeoutInMilliseconds: 2_000 })).toMatch(
      new RegExp(
        `^Could not reach the master "${NAME}" through the Sentinels 127\\.0\\.0\\.1:${nobody}: check the sentinels and name options`,
      ),
    );
  });

  // Last: it leaves the replica as the master, alone.
  it('the master killed: reads answer again from the promoted replica without a restart, every acknowledged count there (waitForReplicas: 1)', async () => {
    const { url } = await start({
      client: sentinelClient({ failoverDetector: true }),
      waitForReplicas: 1,
      operationTimeoutInMilliseconds: 1_000,
    });
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    for (let count = 2; count <= 5; count++)
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count });
    await master.kill();
    let read: unknown;
    await waitFor(async () => {
      const res = await request(url).get('/read').set('Cookie', cookie);
      read = res.body;
      return res.status === 200;
    }, 20_000);
    expect(read).toMatchObject({ available: true, count: 5 });
    expect(/role:master/.test(await replica.admin().info('replication'))).toBe(true);
    // The promoted master has no replica left to acknowledge a write: a commit answers 503, as documented.
    await request(url).get('/counter').set('Cookie', cookie).expect(503);
  }, 40_000);
});

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
