import { request as httpRequest } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ManualClock, redisKeys, type SessionModuleOptions } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { gate, GatedSessionController, type Gate } from '../support/apps/gated-session.controller.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Lq7vRt2nWx9kZc4bHm8pJd1fGs6aYe3uKo5iQt0N2B'];
const APP = 'lease';
/** Short, so that a request outlives it several times over in about a second. */
const TTL = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let gates = 0;

/** Polls `condition` every 20 ms; fails after `ms` naming what did not happen (no loop outlives its test). */
async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(20);
  }
}

function sessionKeyOf(cookie: string): string {
  const signed = cookie.slice(cookie.indexOf('=') + 1);
  return signed.slice(0, signed.lastIndexOf('.'));
}

/** Starts a gated increment (it loads, takes the lock, then waits at its gate) and waits until it waits. */
async function incrementAtGate(url: string, cookie: string) {
  const name = `lease-${++gates}`;
  const g: Gate = gate(name);
  const pending = request(url)
    .post(`/gated/${name}/increment`)
    .set('Cookie', cookie)
    .then((res) => res);
  await Promise.race([
    g.reached(1),
    pending.then((res) => {
      throw new Error(`the increment answered ${res.status} before reaching its gate`);
    }),
  ]);
  return { gate: g, pending };
}

/**
 * session.lock is a lease: it lives `ttl` unless renewed. A request that runs longer keeps it (renewed
 * every third of the TTL), and a request whose lock expired anyway (no renewal reached the store, the
 * process stalled) does not commit over the request that took the lock after it: it answers 409 and
 * saves nothing. "Nothing acknowledged is lost" holds under the lock too.
 */
describe.each<[string, () => Promise<{ options: SessionModuleOptions; stop(): Promise<void> }>]>([
  ['memory', () => Promise.resolve({ options: {}, stop: () => Promise.resolve() })],
  [
    'redis',
    async () => {
      const server = await RedisServerProcess.start();
      return {
        options: { redis: { host: server.host, port: server.port, applicationName: APP } },
        stop: () => server.stop(),
      };
    },
  ],
])('session.lock on the %s store: a request running past the lock TTL', (_store, setup) => {
  let app: INestApplication;
  let url: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const store = await setup();
    stop = store.stop;
    ({ app, url } = await startSessionApp(
      { ...store.options, secrets: SECRETS, session: { lock: { ttl: TTL, acquireTimeout: 5_000 } } },
      { controllers: [GatedSessionController] },
    ));
  });
  afterAll(async () => {
    await app.close();
    await stop();
  });

  it('keeps its lock (renewed while it runs): a request that came meanwhile waits and reads what it wrote', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    const held = await incrementAtGate(url, cookie);
    await sleep(4 * TTL); // the lock would have expired three times over
    let waiterAnswered = false;
    const waiter = request(url)
      .get('/counter')
      .set('Cookie', cookie)
      .then((res) => {
        waiterAnswered = true;
        return res;
      });
    await sleep(TTL);
    expect(waiterAnswered).toBe(false); // still waiting for the lock
    held.gate.release();
    const first = await held.pending;
    expect({ status: first.status, body: first.body as unknown }).toEqual({
      status: 200,
      body: { count: 2 },
    });
    const second = await waiter;
    expect({ status: second.status, body: second.body as unknown }).toEqual({
      status: 200,
      body: { count: 3 },
    });
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 4 });
  });

  it('stops renewing when its client went away: the next request gets the lock after the TTL, and the late commit saves nothing', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    const name = `lease-${++gates}`;
    const client = httpRequest(`${url}/gated/${name}/increment`, { method: 'POST', headers: { cookie } });
    client.on('error', () => undefined); // destroyed below
    client.end();
    await gate(name).reached(1);
    client.destroy(); // the handler still waits at its gate, holding the lock it took
    const started = Date.now();
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    expect(Date.now() - started).toBeLessThan(TTL + 1_000); // the lease ran out: not renewed for ever
    gate(name).release();
    await sleep(100); // the abandoned handler commits, under a lock that is no longer its own
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
  });
});

describe('session.lock on the memory store: a lock that expired while its request was stalled', () => {
  const clock = new ManualClock(Date.now());
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startSessionApp(
      { secrets: SECRETS, memory: { clock }, session: { lock: { ttl: 1_000, acquireTimeout: 2_000 } } },
      { controllers: [GatedSessionController] },
    ));
  });
  afterAll(() => app.close());

  it('commits nothing (409 SESSION_LOCK_LOST): the request that took the lock after it keeps its write', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    const stalled = await incrementAtGate(url, cookie);
    clock.advance(5_000); // the lock's TTL passed with no renewal (as when the process or the store stalls)
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    stalled.gate.release();
    const late = await stalled.pending;
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ statusCode: 409, code: 'SESSION_LOCK_LOST' });
    expect(late.headers['set-cookie']).toBeUndefined();
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
  });
});

describe('session.lock on Redis: a lock that expired while its renewals were stalled on the network', () => {
  let server: RedisServerProcess;
  let proxy: StallProxy;
  const apps: INestApplication[] = [];
  /** Instance a reaches Redis through the stall proxy. */
  let a: string;
  /** Instance b reaches Redis directly. */
  let b: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    proxy = await StallProxy.start(server);
    const start = async (port: number) => {
      const started = await startSessionApp(
        {
          secrets: SECRETS,
          redis: { host: server.host, port, applicationName: APP, operationTimeoutInMilliseconds: 5_000 },
          session: { lock: { ttl: 600, acquireTimeout: 5_000 } },
        },
        { controllers: [GatedSessionController] },
      );
      apps.push(started.app);
      return started.url;
    };
    a = await start(proxy.port);
    b = await start(server.port);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await proxy.stop();
    await server.stop();
  });

  it('commits nothing (409 SESSION_LOCK_LOST) once its connection is back: the other instance keeps its write', async () => {
    const cookie = cookiePair(await request(b).get('/counter').expect(200, { count: 1 }), COOKIE);
    const lockKey = redisKeys.sessionLock(APP, sessionKeyOf(cookie));
    const stalled = await incrementAtGate(a, cookie);
    // Instance a's next renewal, and everything it sends after it, wait 2.5 s on the network.
    const hold = proxy.holdWhen(lockKey, 2_500);
    await waitUntil(() => hold.engaged, 1_000, 'a renewal of the lock'); // renewed every ttl / 3
    // The lease runs out.
    await waitUntil(async () => (await server.admin().exists(lockKey)) === 0, 1_500, 'the lock expiry');
    await request(b).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    stalled.gate.release(); // its commit queues behind the stalled renewal and reaches Redis after it
    const late = await stalled.pending;
    await hold.released;
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ statusCode: 409, code: 'SESSION_LOCK_LOST' });
    await request(b).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
    expect(await server.admin().exists(lockKey)).toBe(0); // each request released its own lock
  }, 15_000);
});
