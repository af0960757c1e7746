import { request as httpRequest } from 'node:http';
import { Controller, Post, Res, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  ManualClock,
  MemorySessionStore,
  redisKeys,
  SessionAccessor,
  SessionStore,
  type SessionLockOptions,
  type SessionModuleOptions,
} from 'nest-session-state';
import { RedisConnection, RedisSessionStore, resolveRedisCacheOptions } from 'nest-session-state/redis';
import { startSessionApp } from '../support/apps/session-test.app.js';
import {
  gate,
  GatedSessionController,
  releaseAllGates,
  type Gate,
} from '../support/apps/gated-session.controller.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair } from '../support/cookie-jar.js';
import { sendBody, type PlatformResponse } from '../support/platform/test-platform.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { lockingStores, type StoreSetup } from '../support/locking-stores.js';
import { StallProxy } from '../support/stall-proxy.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Lq7vRt2nWx9kZc4bHm8pJd1fGs6aYe3uKo5iQt0N2B'];
const APP = 'lease';
/** Short, so that a request outlives it several times over in a few seconds. */
// Renewed every TTL / 3: long enough that a pause of the loaded test process (GC, scheduling, a busy CI machine)
// does not outlast it (at 1 s, a renewal late by 700 ms lost a held lock under load).
const TTL = 2_000;
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
function incrementAtGate(url: string, cookie: string) {
  return atGate(url, cookie, 'increment');
}

/** Starts the gated route `action` (it loads, takes the lock, then waits at its gate) and waits until it waits. */
async function atGate(url: string, cookie: string, action: string, body: object = {}) {
  const name = `lease-${++gates}`;
  const g: Gate = gate(name);
  const pending = request(url)
    .post(`/gated/${name}/${action}`)
    .set('Cookie', cookie)
    .send(body)
    .then((res) => res);
  await Promise.race([
    g.reached(1),
    pending.then((res) => {
      throw new Error(`the ${action} answered ${res.status} before reaching its gate`);
    }),
  ]);
  return { gate: g, pending };
}

/**
 * A gated increment takes the lock, `expireLease` makes its lease run out with no renewal (as when the process
 * or the store stalls longer than the TTL), and another request takes the lock and commits. The stalled request's
 * late commit must answer 409 SESSION_LOCK_LOST and save nothing: the other request's write stays.
 */
async function expectLateCommitRefused(url: string, expireLease: (cookie: string) => Promise<void>) {
  const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
  const stalled = await incrementAtGate(url, cookie);
  await expireLease(cookie);
  await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
  stalled.gate.release();
  const late = await stalled.pending;
  expect(late.status).toBe(409);
  expect(late.body).toMatchObject({ statusCode: 409, code: 'SESSION_LOCK_LOST' });
  expect(late.headers['set-cookie']).toBeUndefined();
  await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
}

/** The stores that keep locks. */
const STORES = lockingStores(APP);

/** Answers first, then loads the session (as code after a timeout interceptor's answer would). */
@Controller('late')
class AnswerThenLoadController {
  constructor(private readonly sessions: SessionAccessor) {}

  @Post('answer-then-load')
  async answerThenLoad(@Res() res: PlatformResponse) {
    sendBody(res, 'sent', 200);
    await new Promise((resolve) => setImmediate(resolve));
    await this.sessions.load().catch(() => undefined);
  }
}

/**
 * Starts an app on the store `setup` gives, with `session.lock` set to `lock`, for the enclosing describe;
 * its `url` once started.
 */
function appWithLock(
  setup: StoreSetup,
  lock: SessionLockOptions,
): { readonly url: string; readonly logger: CaptureLogger } {
  const started = { url: '', logger: new CaptureLogger() };
  let app: INestApplication | undefined;
  let stop = () => Promise.resolve();
  beforeAll(async () => {
    const store = await setup();
    stop = store.stop;
    let url: string;
    ({ app, url } = await startSessionApp(
      { ...store.options, secrets: SECRETS, session: { lock } },
      { controllers: [GatedSessionController, AnswerThenLoadController], logger: started.logger },
    ));
    started.url = url;
  });
  afterAll(async () => {
    releaseAllGates();
    await app?.close();
    await stop();
  });
  return started;
}

/**
 * session.lock is a lease: it lives `ttl` unless renewed. A request that runs longer keeps it (renewed
 * every third of the TTL), and a request whose lock expired anyway (no renewal reached the store, the
 * process stalled) does not commit over the request that took the lock after it: it answers 409 and
 * saves nothing. "Nothing acknowledged is lost" holds under the lock too.
 */
describe.each(STORES)(
  'session.lock on the %s store: a request running past the lock TTL',
  (_store, setup) => {
    const target = appWithLock(setup, { ttl: TTL, acquireTimeout: 5_000 });

    it('keeps its lock (renewed while it runs): a request that came meanwhile waits and reads what it wrote', async () => {
      const url = target.url;
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const held = await incrementAtGate(url, cookie);
      await sleep(2.5 * TTL); // the lock would have expired twice over
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
      const url = target.url;
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
      // Logged as what happened: the store answered and nothing stalled.
      const refused = target.logger.lines.filter((line) => /Session commit refused/.test(line.message));
      expect(refused).toHaveLength(1);
      expect(refused[0].message).toMatch(/SESSION_LOCK_LOST\): the response closed \(its client went away\)/);
      expect(refused[0].message).not.toMatch(/did not answer|stalled/);
    });

    it('a request whose client went away while it waited for the lock stops waiting: it does not take the lock and hold up the next', async () => {
      const url = target.url;
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const holder = await incrementAtGate(url, cookie);
      const name = `lease-${++gates}`;
      const client = httpRequest(`${url}/gated/${name}/increment`, { method: 'POST', headers: { cookie } });
      client.on('error', () => undefined); // destroyed below
      client.end();
      // Waiting for the holder's lock. Shorter than the TTL: the holder keeps its lock without a renewal, so a late
      // renewal on a loaded machine cannot turn its answer into a 409.
      await sleep(TTL / 2);
      client.destroy();
      await sleep(300); // the server sees the connection close
      holder.gate.release();
      expect((await holder.pending).status).toBe(200);
      await sleep(400); // the gone request's next try (one retryInterval at most) would find the lock free now
      // It never took the lock: its handler never ran.
      const reached = await Promise.race([
        gate(name)
          .reached(1)
          .then(() => true),
        sleep(50).then(() => false),
      ]);
      expect(reached).toBe(false);
      const started = Date.now();
      // The gone request would otherwise take the lock now and keep it (renewed) while its handler waits at its gate.
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
      expect(Date.now() - started).toBeLessThan(TTL);
      gate(name).release();
    });
  },
);

describe.each(STORES)(
  'session.lock on the %s store: a request that answered before it took the lock',
  (_store, setup) => {
    // A long lock TTL: a lock left behind would make the next request wait its acquireTimeout and answer 503.
    const target = appWithLock(setup, { ttl: 10_000, acquireTimeout: 1_500 });

    it('releases the lock at once: nothing can commit after the answer, and nothing else would release it', async () => {
      const url = target.url;
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      await request(url).post('/late/answer-then-load').set('Cookie', cookie).expect(200, 'sent');
      await sleep(100);
      const started = Date.now();
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it('while another request held the lock: it does not keep the lock once it gets it', async () => {
      const url = target.url;
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const holder = await incrementAtGate(url, cookie);
      await request(url).post('/late/answer-then-load').set('Cookie', cookie).expect(200, 'sent');
      holder.gate.release();
      expect((await holder.pending).status).toBe(200);
      await sleep(400); // the late load's next try would find the lock free by now
      const started = Date.now();
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
      expect(Date.now() - started).toBeLessThan(1_000);
    });
  },
);

/** Locks kept apart from the store's own (as on another lock service): a subclass's `tryLock`/`unlock`. */
class OwnLocks {
  private readonly held = new Map<string, string>();
  tryLock(key: string, token: string): Promise<boolean> {
    const holder = this.held.get(key);
    if (holder !== undefined && holder !== token) return Promise.resolve(false);
    this.held.set(key, token);
    return Promise.resolve(true);
  }
  unlock(key: string, token: string): Promise<void> {
    if (this.held.get(key) === token) this.held.delete(key);
    return Promise.resolve();
  }
}

class OwnLocksMemoryStore extends MemorySessionStore {
  private readonly own = new OwnLocks();
  override tryLock(key: string, token: string): Promise<boolean> {
    return this.own.tryLock(key, token);
  }
  override unlock(key: string, token: string): Promise<void> {
    return this.own.unlock(key, token);
  }
}

class OwnLocksRedisStore extends RedisSessionStore {
  private readonly own = new OwnLocks();
  override tryLock(key: string, token: string): Promise<boolean> {
    return this.own.tryLock(key, token);
  }
  override unlock(key: string, token: string): Promise<void> {
    return this.own.unlock(key, token);
  }
}

/** A subclass of each store that keeps locks: its store and what stops what it started. */
const OWN_LOCK_STORES: [string, () => Promise<{ store: SessionStore; stop(): Promise<void> }>][] = [
  [
    'MemorySessionStore',
    () => Promise.resolve({ store: new OwnLocksMemoryStore(), stop: () => Promise.resolve() }),
  ],
  [
    'RedisSessionStore',
    async () => {
      const server = await RedisServerProcess.start();
      const connection = new RedisConnection(
        resolveRedisCacheOptions({ host: server.host, port: server.port, applicationName: APP }),
      );
      await connection.connect();
      return {
        store: new OwnLocksRedisStore(connection),
        stop: async () => {
          await connection.close();
          await server.stop();
        },
      };
    },
  ],
];

describe.each(OWN_LOCK_STORES)(
  'session.lock with a %s subclass that takes its locks elsewhere',
  (_, setup) => {
    let app: INestApplication;
    let url: string;
    let stop = () => Promise.resolve();

    beforeAll(async () => {
      const { store, stop: stopStore } = await setup();
      stop = stopStore;
      ({ app, url } = await startSessionApp({
        secrets: SECRETS,
        store,
        session: { lock: { ttl: TTL, acquireTimeout: 2_000 } },
      }));
    });
    afterAll(async () => {
      await app?.close();
      await stop();
    });

    it('commits: the inherited store does not check a lock it never took', async () => {
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      await sleep(2 * TTL); // the inherited renewal found nothing to renew: harmless
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
    });
  },
);

/** A memory store whose next `failUnlocks` releases do not reach it (an outage at the moment of the release). */
class UnreachableAtReleaseStore extends MemorySessionStore {
  failUnlocks = 0;
  override unlock(sessionKey: string, token: string): Promise<void> {
    if (this.failUnlocks-- > 0) return Promise.reject(new Error('store unreachable'));
    return super.unlock(sessionKey, token);
  }
}

/** A memory store that notes when it gave a lock (tryLock) and when it was asked to renew one (renewLock). */
class RenewalsRecordingStore extends MemorySessionStore {
  readonly taken: number[] = [];
  readonly renewals: number[] = [];
  override async tryLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    const took = await super.tryLock(sessionKey, token, ttlMs);
    if (took) this.taken.push(performance.now());
    return took;
  }
  override renewLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    this.renewals.push(performance.now());
    return super.renewLock(sessionKey, token, ttlMs);
  }
}

describe('session.lock renewal schedule', () => {
  const RENEW_TTL = 900;
  const store = new RenewalsRecordingStore();
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startSessionApp(
      { secrets: SECRETS, store, session: { lock: { ttl: RENEW_TTL, acquireTimeout: 3_000 } } },
      { controllers: [GatedSessionController] },
    ));
  });
  afterAll(async () => {
    releaseAllGates();
    await app.close();
  });

  it('renews a held lock every third of its ttl: three renewals within 1.9 x ttl of taking it', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    store.taken.length = 0;
    store.renewals.length = 0;
    const held = await incrementAtGate(url, cookie);
    expect(store.taken).toHaveLength(1);
    const takenAt = store.taken[0];
    await sleep(1.9 * RENEW_TTL - (performance.now() - takenAt));
    // Renewals due at 1/3, 2/3 and 3/3 of the ttl (each scheduled once the one before answered): 0.9 x ttl of slack
    // for the third. Renewed every two thirds instead, the third would come at 2 x ttl.
    const renewed = store.renewals.filter((at) => at - takenAt < 1.9 * RENEW_TTL);
    held.gate.release();
    expect((await held.pending).status).toBe(200);
    expect(renewed.length).toBeGreaterThanOrEqual(3);
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
  });
});

describe('session.lock at shutdown: a request whose client left still holds the lock', () => {
  it('is released as the app closes (Nest does not wait for it): another instance gets the lock at once, not after the TTL', async () => {
    const server = await RedisServerProcess.start();
    const options: SessionModuleOptions = {
      secrets: SECRETS,
      redis: { host: server.host, port: server.port, applicationName: APP },
      session: { lock: { ttl: 30_000, acquireTimeout: 3_000 } },
    };
    const a = await startSessionApp(options, { controllers: [GatedSessionController] });
    const b = await startSessionApp(options);
    let aClosed = false;
    try {
      const cookie = cookiePair(await request(a.url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const name = `shutdown-${++gates}`;
      const held = gate(name);
      const client = httpRequest(`${a.url}/gated/${name}/set/left`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
      });
      client.on('error', () => undefined);
      client.end('{}');
      await held.reached(1); // it holds the lock, waiting at its gate
      client.destroy(); // the visitor navigated away
      await sleep(50);
      await a.app.close(); // a deploy's SIGTERM
      aClosed = true;
      const started = Date.now();
      await request(b.url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      expect(Date.now() - started).toBeLessThan(1_500); // the lock waited 3 s, then 503, for 30 s before
      held.release();
    } finally {
      releaseAllGates();
      if (!aClosed) await a.app.close();
      await b.app.close();
      await server.stop();
    }
  });
});

describe('session.lock at shutdown: a lock try on its way (its client left)', () => {
  it('takes the lock after the close began: the lock is released, not left for its TTL', async () => {
    const server = await RedisServerProcess.start();
    const proxy = await StallProxy.start({ host: server.host, port: server.port });
    const lock = { lock: { ttl: 30_000, acquireTimeout: 3_000 } };
    const a = await startSessionApp({
      secrets: SECRETS,
      // The QUIT at close waits behind the held try (within this timeout): the try reaches Redis and takes the lock.
      redis: {
        host: proxy.host,
        port: proxy.port,
        applicationName: APP,
        operationTimeoutInMilliseconds: 3_000,
      },
      session: lock,
    });
    const b = await startSessionApp(
      {
        secrets: SECRETS,
        redis: { host: server.host, port: server.port, applicationName: APP },
        session: lock,
      },
      { controllers: [GatedSessionController] },
    );
    let aClosed = false;
    try {
      const cookie = cookiePair(await request(b.url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const holder = await atGate(b.url, cookie, 'set/holder'); // b holds the lock
      const client = httpRequest(`${a.url}/counter`, { headers: { cookie } });
      client.on('error', () => undefined);
      client.end(); // a's request waits for the lock, trying again and again
      const onItsWay = proxy.holdWhen(`${sessionKeyOf(cookie)}}_Lock`, 1_500);
      await waitUntil(() => onItsWay.engaged, 5_000, "a's next lock try");
      holder.gate.release();
      expect((await holder.pending).status).toBe(200); // b released: the held try will take the lock
      client.destroy(); // the visitor left
      await sleep(50);
      await a.app.close(); // a deploy's SIGTERM, while the try is on its way
      aClosed = true;
      await onItsWay.released;
      const started = Date.now();
      await request(b.url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      expect(Date.now() - started).toBeLessThan(2_500); // the lock waited 3 s, then 503, for 30 s before
    } finally {
      releaseAllGates();
      if (!aClosed) await a.app.close();
      await b.app.close();
      await proxy.stop();
      await server.stop();
    }
  });
});

describe('session.lock: a release that fell in an outage', () => {
  const store = new UnreachableAtReleaseStore();
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startSessionApp({
      secrets: SECRETS,
      store,
      session: { lock: { ttl: 10_000, acquireTimeout: 3_000 } },
    }));
  });
  afterAll(() => app.close());

  it('is tried again once the store answers: the next request gets the lock at once, not after the TTL', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    store.failUnlocks = 2; // this release, and its first retry
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    const started = Date.now();
    await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
    expect(Date.now() - started).toBeLessThan(2_000); // the retries wait 250, then 500 ms
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
    await expectLateCommitRefused(url, () => {
      clock.advance(5_000); // the lock's TTL passed on the store's clock
      return Promise.resolve();
    });
  });
});

describe('session.lock on PostgreSQL: a lock that expired in the database clock while its request was stalled', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    db = await TestDatabase.create();
    ({ app, url } = await startSessionApp(
      {
        secrets: SECRETS,
        postgres: { connectionString: db.url() },
        session: { lock: { ttl: 1_000, acquireTimeout: 2_000 } },
      },
      { controllers: [GatedSessionController] },
    ));
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('commits nothing (409 SESSION_LOCK_LOST): the request that took the lock after it keeps its write', async () => {
    await expectLateCommitRefused(url, async (cookie) => {
      // The lock's expiry is the database's to judge, so the test moves it there.
      const expired = await db.query(
        `UPDATE nest_sessions_locks SET expires_at = clock_timestamp() - interval '1 second'
         WHERE session_key = $1 RETURNING 1`,
        [sessionKeyOf(cookie)],
      );
      expect(expired).toHaveLength(1);
    });
    expect(await db.query('SELECT * FROM nest_sessions_locks')).toEqual([]); // each request released its own lock
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

/** A store whose locks a test can make run out (as a stall longer than the TTL would), and whose sessions it counts. */
interface LeaseStore {
  readonly options: SessionModuleOptions;
  /** Makes the lock on the session of `cookie` expire in the store, with no renewal able to save it. */
  expireLease(cookie: string): Promise<void>;
  /** Sessions stored (expired ones the store has not dropped yet may count). */
  sessions(app: INestApplication): Promise<number>;
  stop(): Promise<void>;
}

/** The stores that keep locks, each with its own way to make a held lock run out. */
const LOST_LEASE_STORES: [string, () => Promise<LeaseStore>][] = [
  [
    'memory',
    () => {
      const clock = new ManualClock(Date.now());
      return Promise.resolve({
        options: { memory: { clock } },
        expireLease: () => {
          clock.advance(5_000); // the lock's TTL passed on the store's clock
          return Promise.resolve();
        },
        sessions: (app) => Promise.resolve(app.get<MemorySessionStore>(SessionStore).count),
        stop: () => Promise.resolve(),
      });
    },
  ],
  [
    'redis',
    async () => {
      const server = await RedisServerProcess.start();
      return {
        options: { redis: { host: server.host, port: server.port, applicationName: APP } },
        // Redis drops the lock key as its PX would; the holder's next renewal finds it gone.
        expireLease: async (cookie) => {
          expect(await server.admin().del(redisKeys.sessionLock(APP, sessionKeyOf(cookie)))).toBe(1);
        },
        sessions: async () => (await server.admin().keys(`{${APP}_*}_Data`)).length,
        stop: () => server.stop(),
      };
    },
  ],
  [
    'postgresql',
    async () => {
      const db = await TestDatabase.create();
      return {
        options: { postgres: { connectionString: db.url() } },
        // The lock's expiry is the database's to judge, so the test moves it there.
        expireLease: async (cookie) => {
          const expired = await db.query(
            `UPDATE nest_sessions_locks SET expires_at = clock_timestamp() - interval '1 second'
             WHERE session_key = $1 RETURNING 1`,
            [sessionKeyOf(cookie)],
          );
          expect(expired).toHaveLength(1);
        },
        sessions: async () =>
          (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM nest_sessions'))[0].n,
        stop: () => db.drop(),
      };
    },
  ],
];

/**
 * regenerate() and abandon() are fenced as commits are: a request whose lock expired while it was stalled, after
 * which another request took the lock, wrote and was answered 200, neither moves that write to a new key (where
 * the stale request's values would overwrite it, under a cookie the other request's client never gets) nor deletes
 * it. It answers 409 SESSION_LOCK_LOST and applies nothing: no new session, no new cookie, the old one keeps the
 * other request's write.
 */
describe.each(LOST_LEASE_STORES)(
  'session.lock on the %s store: regenerate() or abandon() of a request whose lock expired while it was stalled',
  (_store, setup) => {
    let store: LeaseStore;
    let app: INestApplication | undefined;
    let url: string;

    beforeAll(async () => {
      store = await setup();
      ({ app, url } = await startSessionApp(
        { ...store.options, secrets: SECRETS, session: { lock: { ttl: 1_000, acquireTimeout: 2_000 } } },
        { controllers: [GatedSessionController] },
      ));
    });
    afterAll(async () => {
      releaseAllGates();
      await app?.close();
      await store?.stop();
    });

    /**
     * A session holding count 1; `action` stalls at its gate holding the lock, the lease runs out, an increment
     * takes the lock and is answered count 2. Then the stalled `action` resumes, and must be refused.
     */
    async function staleAfterAnotherWrite(action: string, body: object = {}) {
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const stalled = await atGate(url, cookie, action, body);
      await store.expireLease(cookie);
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      const sessions = await store.sessions(app!);
      stalled.gate.release();
      const late = await stalled.pending;
      expect(late.status).toBe(409);
      expect(late.body).toMatchObject({ statusCode: 409, code: 'SESSION_LOCK_LOST' });
      expect(late.headers['set-cookie']).toBeUndefined();
      expect(await store.sessions(app!)).toBe(sessions); // no new session left under a key nobody got
      return cookie;
    }

    it("regenerate() moves nothing (409 SESSION_LOCK_LOST): the other request's write stays under the old cookie, and no new session is stored", async () => {
      const cookie = await staleAfterAnotherWrite('regenerate', { key: 'mine' });
      const read = await request(url).get('/read').set('Cookie', cookie).expect(200);
      expect(read.body).toMatchObject({ count: 2, keys: ['count'] }); // not the stale count 1, nor its key
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
    });

    it("abandon() deletes nothing (409 SESSION_LOCK_LOST): the other request's write stays", async () => {
      const cookie = await staleAfterAnotherWrite('abandon');
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 3 });
    });

    it('regenerate() and abandon() under a lock still held apply as usual', async () => {
      /** The gated route `action`, its gate open: it runs straight through. */
      const ungated = (action: string, cookie: string) => {
        const name = `lease-${++gates}`;
        gate(name).release();
        return request(url).post(`/gated/${name}/${action}`).set('Cookie', cookie).send({}).expect(200);
      };
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const next = cookiePair(await ungated('regenerate', cookie), COOKIE);
      expect(next).not.toBe(cookie);
      await request(url).get('/counter').set('Cookie', next).expect(200, { count: 2 });
      // Moved just now: the old cookie's write is refused (the browser is getting the new one), nothing stored there.
      await request(url).get('/counter').set('Cookie', cookie).expect(409);
      await request(url)
        .get('/read')
        .set('Cookie', cookie)
        .expect(200, { available: true, keys: [], count: null, name: null });
      await ungated('abandon', next);
      await request(url).get('/counter').set('Cookie', next).expect(200, { count: 1 });
    });
  },
);

/**
 * A try to take the lock that reaches the store after the request stopped waiting for it (its reply would come too
 * late to matter: the request answered 503, or retried on a new connection and took the lock, and released it) must
 * take nothing: nobody would release it, and the visitor's next requests would wait for it, or answer 503, for a
 * whole ttl (a probe: 30 s with `lock: true`). The take carries the request's deadline, as a commit does.
 */
describe('session.lock: a take that reaches the store after the request stopped waiting takes nothing', () => {
  it('Redis: a try held on the network past its deadline, then delivered, leaves the lock free', async () => {
    const server = await RedisServerProcess.start();
    const proxy = await StallProxy.start(server);
    const connection = new RedisConnection(
      resolveRedisCacheOptions({
        host: proxy.host,
        port: proxy.port,
        applicationName: APP,
        operationTimeoutInMilliseconds: 300,
      }),
    );
    try {
      await connection.connect();
      const store = new RedisSessionStore(connection);
      const lockKey = redisKeys.sessionLock(APP, 'late-take');
      const hold = proxy.holdWhen(lockKey, 900);
      await expect(store.tryLock('late-take', 'late-token', 30_000)).rejects.toThrow(/timed out/);
      await hold.answered; // the try reached Redis and ran
      expect(await server.admin().exists(lockKey)).toBe(0); // before: taken for 30 s, released by nobody
      // In time it takes, as before.
      expect(await store.tryLock('late-take', 'in-time', 30_000)).toBe(true);
      expect(await server.admin().get(lockKey)).toBe('in-time');
    } finally {
      await connection.close();
      await proxy.stop();
      await server.stop();
    }
  });

  it("Redis: a try refused as late (the app's estimate of Redis's clock behind) fails, rather than reading as a lock another request holds", async () => {
    const server = await RedisServerProcess.start();
    const connection = new RedisConnection(
      resolveRedisCacheOptions({ host: server.host, port: server.port, applicationName: APP }),
    );
    try {
      await connection.connect();
      const store = new RedisSessionStore(connection);
      // The deadline every try gets, as an estimate far behind Redis's clock would make it.
      const inTime = connection.commitDeadline.bind(connection);
      connection.commitDeadline = () => 1;
      // Before: false ("held"), and the request waited out acquireTimeout for a lock nobody held.
      await expect(store.tryLock('behind', 'token', 30_000)).rejects.toThrow(
        /reached Redis after its deadline/,
      );
      expect(await server.admin().exists(redisKeys.sessionLock(APP, 'behind'))).toBe(0);
      connection.commitDeadline = inTime;
      expect(await store.tryLock('behind', 'token', 30_000)).toBe(true);
    } finally {
      await connection.close();
      await server.stop();
    }
  });

  it('PostgreSQL with session.ioTimeout under the operation timeout: a take slowed past ioTimeout (503) takes nothing when it runs', async () => {
    const db = await TestDatabase.create();
    const { app, url } = await startSessionApp({
      secrets: SECRETS,
      postgres: { connectionString: db.url() },
      session: { lock: { ttl: 10_000, acquireTimeout: 5_000 }, ioTimeout: 300 },
    });
    try {
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const key = sessionKeyOf(cookie);
      // Another transaction inserts the session's lock row and holds it uncommitted for 0.7 s: the take waits for
      // it (past ioTimeout, within the 1 s operation timeout), then runs once it rolls back.
      const competing = db.query(
        `BEGIN; INSERT INTO nest_sessions_locks VALUES ('${key}', 'other', clock_timestamp() + interval '1 minute');
         SELECT pg_sleep(0.7); ROLLBACK;`,
      );
      await sleep(100);
      await request(url).get('/counter').set('Cookie', cookie).expect(503);
      await competing;
      await sleep(200);
      // Before: the request's token held the lock for the whole ttl (10 s), and the next request waited for it.
      expect(await db.query('SELECT token FROM nest_sessions_locks')).toEqual([]);
      const started = Date.now();
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await app.close();
      await db.drop();
    }
  });
});
