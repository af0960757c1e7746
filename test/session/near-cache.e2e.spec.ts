import { Controller, Get, Query, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  MemorySessionStore,
  RedisConfigurationError,
  Session,
  SessionConfigurationError,
  type RedisCacheOptions,
} from 'nest-session-state';
import { Redis } from 'ioredis';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair } from '../support/cookie-jar.js';
import { CommandMonitor, RedisServerProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';

/**
 * The opt-in near cache (`redis.nearCache`) against a real Redis: reads served from the instance's
 * copy, the copy dropped when another instance writes (CLIENT TRACKING invalidations), and nothing
 * stale served after the invalidation channel was lost, the data connection was lost, or Redis was
 * flushed. maxAge is one minute here, so only an invalidation (not the age bound) can make an
 * instance see another's write within the waits below.
 */
const COOKIE = '.Nest.Session';
const SECRETS = ['k8JdQ0wZr4Vn1pYt6sXc2bLm9gHf3aEu7iOq5yTz0R'];
const APP = 'near';
const NEAR = { maxAgeInMilliseconds: 60_000 };
const SUBSCRIBER_NAME = 'nest-session-state:invalidations';
/** A read served from the copy: only the invalidation barrier's PING reaches Redis. */
const HELD = ['PING'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(25);
  }
  return check();
}

describe('near cache (redis.nearCache)', () => {
  let server: RedisServerProcess;
  let monitor: CommandMonitor;
  /** Near-cached instance. */
  let a: { app: INestApplication; url: string };
  /** A second instance on the same Redis, without a near cache, that writes behind a's back. */
  let b: { app: INestApplication; url: string };

  const redis = (extra: RedisCacheOptions = {}): RedisCacheOptions => ({
    host: server.host,
    port: server.port,
    applicationName: APP,
    ...extra,
  });

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    a = await startSessionApp({ secrets: SECRETS, redis: redis({ nearCache: NEAR }) });
    b = await startSessionApp({ secrets: SECRETS, redis: redis() });
    monitor = await CommandMonitor.start(server);
  });
  afterAll(async () => {
    await monitor.stop();
    await a.app.close();
    await b.app.close();
    await server.stop();
  });

  /** Redis commands (top level) that one request caused. */
  async function commandsOf(url: string, method: 'get' | 'post', path: string, cookie: string) {
    await monitor.settle();
    monitor.reset();
    const res = await request(url)[method](path).set('Cookie', cookie).send({ value: 'x' }).expect(200);
    await sleep(20);
    await monitor.settle();
    return { commands: monitor.commands(), body: res.body as Record<string, unknown> };
  }

  const keys = async (url: string, cookie: string) =>
    (await request(url).get('/keys').set('Cookie', cookie).expect(200)).body as Record<string, unknown>;

  async function newSession(): Promise<string> {
    return cookiePair(await request(a.url).post('/set/seed').send({ value: 's' }).expect(200), COOKIE);
  }

  it('a read costs a PING once the instance holds the session; a read-modify-write two scripts, as without it', async () => {
    const cookie = await newSession();
    const script = expect.stringMatching(/^EVAL(SHA)?$/);
    // First request with the cookie: nothing held yet (a commit alone does not tell the whole session).
    expect((await commandsOf(a.url, 'get', '/counter', cookie)).commands).toEqual([script, script]);
    // a's own commit ended its copy (Redis invalidates it for a too): the next load reads Redis, and is held.
    const rmw = await commandsOf(a.url, 'get', '/counter', cookie);
    expect(rmw.commands).toEqual([script, script]);
    expect(rmw.body).toEqual({ count: 2 });
    expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual([script]);
    // From the copy, after the invalidation barrier (a PING on the invalidation connection, so every invalidation
    // sent before the request has arrived).
    const read = await commandsOf(a.url, 'get', '/read', cookie);
    expect(read.commands).toEqual(['PING']);
    expect(read.body).toMatchObject({ count: 2 });
    expect((await commandsOf(a.url, 'get', '/untouched', cookie)).commands).toEqual([]);
    // What the instance served is what Redis holds.
    expect((await request(b.url).get('/read').set('Cookie', cookie).expect(200)).body.count).toBe(2);
  });

  it('its bounds hold: a copy is served at most maxAgeInMilliseconds, and at most maxEntries sessions are held', async () => {
    // The documented staleness bound (docs/redis.md): a copy older than maxAgeInMilliseconds is read from Redis again,
    // whatever the invalidations said; and the instance holds no more than maxEntries copies.
    const script = [expect.stringMatching(/^EVAL(SHA)?$/)];
    const MAX_AGE = 2500; // long enough for two requests on a loaded machine
    const aged = await startSessionApp({
      secrets: SECRETS,
      redis: redis({ nearCache: { maxAgeInMilliseconds: MAX_AGE } }),
    });
    const few = await startSessionApp({ secrets: SECRETS, redis: redis({ nearCache: { maxEntries: 1 } }) });
    try {
      const cookie = await newSession();
      const readAt = Date.now(); // the copy is read from Redis after this
      expect((await commandsOf(aged.url, 'get', '/read', cookie)).commands).toEqual(script);
      expect((await commandsOf(aged.url, 'get', '/read', cookie)).commands).toEqual(HELD);
      await sleep(readAt + MAX_AGE + 100 - Date.now());
      expect((await commandsOf(aged.url, 'get', '/read', cookie)).commands).toEqual(script);

      const other = await newSession();
      expect((await commandsOf(few.url, 'get', '/read', cookie)).commands).toEqual(script);
      expect((await commandsOf(few.url, 'get', '/read', cookie)).commands).toEqual(HELD);
      expect((await commandsOf(few.url, 'get', '/read', other)).commands).toEqual(script); // evicts the first
      expect((await commandsOf(few.url, 'get', '/read', cookie)).commands).toEqual(script);
    } finally {
      await aged.app.close();
      await few.app.close();
    }
  });

  it("another instance's write is seen at once, also after this instance's own commit: Redis invalidates the copy", async () => {
    const cookie = await newSession();
    await request(a.url).get('/read').set('Cookie', cookie).expect(200);
    expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual(HELD); // held
    await request(b.url).post('/set/color').set('Cookie', cookie).send({ value: 'blue' }).expect(200);
    expect(await waitUntil(async () => (await keys(a.url, cookie)).color === 'blue', 1000)).toBe(true);
    // The fresh copy is held again.
    expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual(HELD);
    // a commits (its own write ends its copy: the next read goes to Redis and is held again) ...
    await request(a.url).post('/set/size').set('Cookie', cookie).send({ value: 'L' }).expect(200);
    expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual([
      expect.stringMatching(/^EVAL/),
    ]);
    expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual(HELD);
    // ... so b's next write is seen too.
    await request(b.url).post('/set/color').set('Cookie', cookie).send({ value: 'red' }).expect(200);
    expect(await waitUntil(async () => (await keys(a.url, cookie)).color === 'red', 1000)).toBe(true);
    expect(await keys(a.url, cookie)).toMatchObject({ color: 'red', size: 'L', seed: 's' });
  });

  it("another near-cached instance's read does not cost this instance its copy (its load slides only when due)", async () => {
    const c = await startSessionApp({ secrets: SECRETS, redis: redis({ nearCache: NEAR }) });
    try {
      const cookie = await newSession();
      await request(a.url).get('/read').set('Cookie', cookie).expect(200);
      const load = await commandsOf(c.url, 'get', '/read', cookie); // slid moments ago: no PEXPIRE
      expect(load.commands).toEqual([expect.stringMatching(/^EVAL(SHA)?$/)]);
      await sleep(50);
      expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual(HELD);
      // Without the near cache a load always slides (a write), which invalidates a's copy.
      await request(b.url).get('/read').set('Cookie', cookie).expect(200);
      await sleep(50);
      expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toHaveLength(1);
    } finally {
      await c.app.close();
    }
  });

  it('a read served from the copy does not count as a slide: an untouched request still slides when due', async () => {
    // A window wide enough that the copy read falls inside it on a loaded machine (a 300 ms one left ~80 ms).
    const WINDOW = 1_500;
    const d = await startSessionApp({
      secrets: SECRETS,
      session: { slideSkipWindow: WINDOW },
      redis: redis({ nearCache: NEAR }),
    });
    try {
      const cookie = cookiePair(
        await request(d.url).post('/set/seed').send({ value: 's' }).expect(200),
        COOKIE,
      ); // committed (slid) by now
      const t0 = Date.now();
      await request(d.url).get('/read').set('Cookie', cookie).expect(200); // from Redis, slide not due yet
      await sleep(200);
      expect((await commandsOf(d.url, 'get', '/read', cookie)).commands).toEqual(HELD); // from the copy
      await sleep(t0 + WINDOW + 50 - Date.now()); // the last real slide is older than slideSkipWindow
      expect((await commandsOf(d.url, 'get', '/untouched', cookie)).commands).toHaveLength(1);
    } finally {
      await d.app.close();
    }
  });

  it('writes are never lost: concurrent writes from both instances to one session all persist', async () => {
    const cookie = await newSession();
    await request(a.url).get('/read').set('Cookie', cookie).expect(200);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        request(i % 2 === 0 ? a.url : b.url)
          .post(`/set/k${i}`)
          .set('Cookie', cookie)
          .send({ value: `v${i}` })
          .expect(200),
      ),
    );
    for (const url of [b.url, a.url]) {
      expect(await waitUntil(async () => Object.keys(await keys(url, cookie)).length === 41, 1000)).toBe(
        true,
      );
      const body = await keys(url, cookie);
      for (let i = 0; i < 40; i++) expect(body[`k${i}`]).toBe(`v${i}`);
    }
  });

  it('while the invalidation channel is down nothing is served from the copy, and afterwards it is used again', async () => {
    const cookie = await newSession();
    await request(a.url).get('/read').set('Cookie', cookie).expect(200);
    const admin = server.admin();
    const subscriber = /id=(\d+) [^\n]*name=nest-session-state:invalidations/.exec(
      (await admin.client('LIST')) as string,
    );
    expect(subscriber).not.toBeNull();
    await admin.client('KILL', 'ID', subscriber![1]);
    await sleep(30); // a has seen the close; its reconnect waits 100 ms
    // Off: the read goes to Redis.
    const off = await commandsOf(a.url, 'get', '/read', cookie);
    expect(off.commands).toEqual([expect.stringMatching(/^EVAL(SHA)?$/)]);
    // Written while a had no invalidation channel: Redis had nobody to tell.
    await request(b.url).post('/set/color').set('Cookie', cookie).send({ value: 'green' }).expect(200);
    expect((await keys(a.url, cookie)).color).toBe('green');
    // The subscriber reconnected and tracking is on again: reads are held again.
    expect(
      await waitUntil(async () => {
        await request(a.url).get('/read').set('Cookie', cookie).expect(200);
        return (await commandsOf(a.url, 'get', '/read', cookie)).commands.join() === HELD.join();
      }, 5000),
    ).toBe(true);
    const list = (await admin.client('LIST')) as string;
    expect(list.match(new RegExp(`name=${SUBSCRIBER_NAME}`, 'g'))).toHaveLength(1);
  });

  it("after a's data connection was lost, writes made meanwhile are seen, and copies are used again", async () => {
    const cookie = await newSession();
    await request(a.url).get('/read').set('Cookie', cookie).expect(200);
    const admin = server.admin();
    // a's data connection is the one with tracking on (flag t).
    const tracked = /id=(\d+) [^\n]*flags=\w*t\w* /.exec((await admin.client('LIST')) as string);
    expect(tracked).not.toBeNull();
    await admin.client('KILL', 'ID', tracked![1]);
    await request(b.url).post('/set/color').set('Cookie', cookie).send({ value: 'red' }).expect(200);
    expect(
      await waitUntil(
        async () => (await keys(a.url, cookie).catch((): Record<string, unknown> => ({}))).color === 'red',
        3000,
      ),
    ).toBe(true);
    // Reconnected: tracking on again on the new connection, and reads are held again.
    expect(
      await waitUntil(async () => {
        await request(a.url).get('/read').set('Cookie', cookie);
        return (await commandsOf(a.url, 'get', '/read', cookie)).commands.join() === HELD.join();
      }, 5000),
    ).toBe(true);
    await request(b.url).post('/set/color').set('Cookie', cookie).send({ value: 'blue' }).expect(200);
    expect(await waitUntil(async () => (await keys(a.url, cookie)).color === 'blue', 1000)).toBe(true);
  });

  it("with an app client that has a keyPrefix, another instance's write and abandon() are seen at once", async () => {
    const prefixed = () =>
      new Redis({ host: server.host, port: server.port, keyPrefix: 'pfx:', lazyConnect: true });
    const clients = [prefixed(), prefixed()];
    const near = await startSessionApp({ secrets: SECRETS, redis: { client: clients[0], nearCache: NEAR } });
    const other = await startSessionApp({ secrets: SECRETS, redis: { client: clients[1] } });
    try {
      const cookie = cookiePair(
        await request(near.url).post('/set/seed').send({ value: 's' }).expect(200),
        COOKIE,
      );
      await request(near.url).get('/read').set('Cookie', cookie).expect(200);
      expect((await commandsOf(near.url, 'get', '/read', cookie)).commands).toEqual(HELD); // held
      await request(other.url).post('/set/color').set('Cookie', cookie).send({ value: 'blue' }).expect(200);
      expect(await keys(near.url, cookie)).toEqual({ seed: 's', color: 'blue' });
      await request(other.url).post('/abandon').set('Cookie', cookie).expect(200);
      expect(await keys(near.url, cookie)).toEqual({});
    } finally {
      await near.app.close();
      await other.app.close();
      for (const client of clients) client.disconnect();
    }
  });

  it('FLUSHALL drops every copy', async () => {
    const cookie = await newSession();
    await request(a.url).get('/counter').set('Cookie', cookie).expect(200);
    await request(a.url).get('/read').set('Cookie', cookie).expect(200);
    expect((await commandsOf(a.url, 'get', '/read', cookie)).commands).toEqual(HELD); // held
    await server.admin().flushall();
    const held = async () =>
      ((await request(a.url).get('/read').set('Cookie', cookie).expect(200)).body as { keys: string[] }).keys;
    expect(await waitUntil(async () => (await held()).length === 0, 1000)).toBe(true);
  });
});

/** Reads the session, waits `ms` (query), then sets `late`: a commit made long after its load. */
@Controller('near')
class SlowWriteController {
  @Get('slow-write')
  async slowWrite(@Session() session: Session, @Query('ms') ms: string) {
    const before = session.keys;
    await sleep(Number(ms));
    session.setString('late', 'x');
    return { before };
  }
}

describe("near cache: what Redis does to keys while running the instance's own command", () => {
  let server: RedisServerProcess;
  let a: { app: INestApplication; url: string };
  let b: { app: INestApplication; url: string };
  const IDLE = 1_000;

  beforeAll(async () => {
    // Active expiry off: an expired key stays until a command touches it, as a key Redis has not sampled yet.
    server = await RedisServerProcess.start({ extraArgs: ['--enable-debug-command', 'yes'] });
    await server.admin().call('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
    const redis = { host: server.host, port: server.port, applicationName: APP };
    // Copies served up to 800 ms after a slide (the default, idleTimeout / 20, is too short to see one here).
    const session = { idleTimeout: IDLE, slideSkipWindow: 800 };
    a = await startSessionApp(
      { secrets: SECRETS, session, redis: { ...redis, nearCache: NEAR } },
      { controllers: [SlowWriteController] },
    );
    b = await startSessionApp({ secrets: SECRETS, session, redis });
  });
  afterAll(async () => {
    await a.app.close();
    await b.app.close();
    await server.stop();
  });

  const keys = async (url: string, cookie: string) =>
    (await request(url).get('/keys').set('Cookie', cookie).expect(200)).body as Record<string, unknown>;

  // Before, the commit's own first read expired the key; Redis does not tell the connection that ran it (NOLOOP),
  // and the instance applied the delta to its copy: it served the expired values, every other instance did not.
  it('a commit that lands after the session expired: the copy holds what Redis holds, not the expired values', async () => {
    const cookie = cookiePair(await request(a.url).post('/set/old').send({ value: 'o' }).expect(200), COOKIE);
    await request(a.url).get('/read').set('Cookie', cookie).expect(200); // from Redis: slides, a holds a copy
    const { body } = await request(a.url)
      .get(`/near/slow-write?ms=${IDLE + 400}`)
      .set('Cookie', cookie)
      .expect(200);
    expect(body).toEqual({ before: ['old'] }); // loaded before the expiry
    expect(await keys(a.url, cookie)).toEqual({ late: 'x' }); // within the window: from a's copy
    expect(await keys(b.url, cookie)).toEqual({ late: 'x' });
  });

  // The probe's case: Redis drops keys from a full tracking table while running a's own read, and with NOLOOP did
  // not tell a; b's writes to those keys were then never announced, and a served its copies until maxAge.
  it("a full tracking table: keys Redis drops while running a's own read are announced to a", async () => {
    const admin = server.admin();
    await admin.call('CONFIG', 'SET', 'tracking-table-max-keys', '2');
    try {
      const cookies: string[] = [];
      for (let i = 0; i < 4; i++) {
        cookies.push(
          cookiePair(await request(b.url).post('/set/v').send({ value: '1' }).expect(200), COOKIE),
        );
      }
      for (const cookie of cookies) await request(a.url).get('/read').set('Cookie', cookie).expect(200); // held
      for (const cookie of cookies) {
        await request(b.url).post('/set/v').set('Cookie', cookie).send({ value: '2' }).expect(200);
      }
      const seen = [];
      for (const cookie of cookies) seen.push((await keys(a.url, cookie)).v);
      expect(seen).toEqual(['2', '2', '2', '2']);
    } finally {
      await admin.call('CONFIG', 'SET', 'tracking-table-max-keys', '0');
    }
  });

  it('a slide (untouched request) that finds the session expired drops the copy', async () => {
    const cookie = cookiePair(await request(a.url).post('/set/old').send({ value: 'o' }).expect(200), COOKIE);
    await request(a.url).get('/read').set('Cookie', cookie).expect(200); // a holds a copy
    await sleep(IDLE + 200);
    await request(a.url).get('/untouched').set('Cookie', cookie).expect(200); // the slide finds nothing
    expect(await keys(a.url, cookie)).toEqual({}); // within the window of that slide
    expect(await keys(b.url, cookie)).toEqual({});
  });
});

describe('near cache when the invalidation connection stops answering', () => {
  /** Long enough that one barrier's wait (a full operation timeout) stands out from the slack of a loaded run. */
  const OPERATION_TIMEOUT = 1_000;
  const SLACK = 600;
  let server: RedisServerProcess;
  let proxy: StallProxy;
  let monitor: CommandMonitor;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    proxy = await StallProxy.start(server);
    monitor = await CommandMonitor.start(server);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await monitor.stop();
    await proxy.stop();
    await server.stop();
  });

  /** A near-cached instance (through `port`) holding a copy of a new session; its cookie. */
  async function heldSession(port: number): Promise<{ url: string; cookie: string }> {
    const { app, url } = await startSessionApp({
      secrets: SECRETS,
      redis: {
        host: server.host,
        port,
        applicationName: `stalled-${port}`,
        operationTimeoutInMilliseconds: OPERATION_TIMEOUT,
        nearCache: NEAR,
      },
    });
    apps.push(app);
    const cookie = cookiePair(await request(url).post('/set/seed').send({ value: 's' }).expect(200), COOKIE);
    await request(url).get('/read').set('Cookie', cookie).expect(200);
    return { url, cookie };
  }

  const timedRead = async (url: string, cookie: string) => {
    const started = Date.now();
    const res = await request(url).get('/read').set('Cookie', cookie);
    return { status: res.status, ms: Date.now() - started };
  };

  /** Until a read is served from the copy again (only the barrier's PING reaches Redis). */
  const servedFromCopy = (url: string, cookie: string) =>
    waitUntil(async () => {
      await monitor.settle();
      monitor.reset();
      await request(url).get('/read').set('Cookie', cookie).expect(200);
      await sleep(20);
      await monitor.settle();
      return monitor.commands().join() === HELD.join();
    }, 5_000);

  it('a half-open invalidation connection costs one request one operation timeout, not every request; then copies are used again', async () => {
    const { url, cookie } = await heldSession(proxy.port);
    const hold = proxy.holdWhen('$4\r\nping', 4_000); // the barrier's PING, on the invalidation connection
    const first = await timedRead(url, cookie);
    expect(hold.engaged).toBe(true);
    expect(first.status).toBe(200); // read from Redis once the barrier gave up
    expect(first.ms).toBeGreaterThanOrEqual(OPERATION_TIMEOUT - 20);
    // The connection that did not answer was replaced: the next requests read Redis without waiting for it.
    const next = await timedRead(url, cookie);
    expect(next.status).toBe(200);
    expect(next.ms).toBeLessThan(SLACK);
    expect(await servedFromCopy(url, cookie)).toBe(true);
  });

  it('a hung Redis (CLIENT PAUSE): after the first barrier gave up, requests answer 503 within one operation timeout, not two', async () => {
    const { url, cookie } = await heldSession(server.port);
    await server.pause(4 * OPERATION_TIMEOUT); // past both requests below, which take three at most
    const first = await timedRead(url, cookie); // the barrier's wait, then the read's
    expect(first.status).toBe(503);
    expect(first.ms).toBeLessThan(2 * OPERATION_TIMEOUT + SLACK);
    const next = await timedRead(url, cookie);
    expect(next.status).toBe(503);
    expect(next.ms).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    await sleep(2 * OPERATION_TIMEOUT); // the pause ends
    expect(await servedFromCopy(url, cookie)).toBe(true);
  });
});

/**
 * A failover that moves the server's address (a Sentinel client, a DNS name) while the old master still answers: the
 * invalidation connection reconnected to the new server, the data connection stayed on the old one. The data connection
 * must not redirect its tracking to the subscriber's client id there: on the old server that id is another client's.
 */
describe('near cache when its two connections reach different servers (a failover moved one of them)', () => {
  let oldServer: RedisServerProcess;
  let newServer: RedisServerProcess;
  let proxy: StallProxy;
  let stranger: Redis | undefined;
  const logger = new CaptureLogger();
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    oldServer = await RedisServerProcess.start();
    newServer = await RedisServerProcess.start();
    proxy = await StallProxy.start(oldServer);
  });
  afterAll(async () => {
    stranger?.disconnect();
    for (const app of apps) await app.close();
    await proxy.stop();
    await oldServer.stop();
    await newServer.stop();
  });

  const clientId = async (connection: Redis) => Number(await connection.client('ID'));

  it("reads nothing stale: the near cache stays off, where the subscriber's id belongs to another client on the old server", async () => {
    const reader = await startSessionApp(
      {
        secrets: SECRETS,
        redis: { host: proxy.host, port: proxy.port, applicationName: APP, nearCache: NEAR },
      },
      { logger },
    );
    // The same logger: Nest's loggers are one for the process, and an app without one would silence the reader's.
    const writer = await startSessionApp(
      { secrets: SECRETS, redis: { host: oldServer.host, port: oldServer.port, applicationName: APP } },
      { logger },
    );
    apps.push(reader.app, writer.app);
    const cookie = cookiePair(
      await request(writer.url).post('/set/name').send({ value: 'v1' }).expect(200),
      COOKIE,
    );
    expect((await request(reader.url).get('/read').set('Cookie', cookie).expect(200)).body).toMatchObject({
      name: 'v1',
    });

    // The id the subscriber will get on the new server, held on the old one by a client of no concern to the reader.
    const pump = Array.from(
      { length: 60 },
      () => new Redis({ host: newServer.host, port: newServer.port, lazyConnect: true }),
    );
    for (const connection of pump) await connection.connect();
    const ids = await Promise.all(pump.map(clientId));
    const next = Math.max(...ids) + 1;
    // The last of them stays to watch the new server: a client connecting there now would take the id.
    const observer = pump[ids.indexOf(next - 1)];
    for (const connection of pump) if (connection !== observer) connection.disconnect();
    for (;;) {
      const candidate = new Redis({ host: oldServer.host, port: oldServer.port });
      const id = await clientId(candidate);
      if (id === next) {
        stranger = candidate;
        break;
      }
      candidate.disconnect();
      if (id > next)
        throw new Error(`the old server's ids passed ${next} already: pump the new server further`);
    }

    // The failover moves the address: the subscriber, cut off, reconnects to the new server; the data connection stays.
    proxy.retarget(newServer);
    const list = String(await oldServer.admin().client('LIST'));
    const subscriber = new RegExp(`^id=(\\d+) .*name=${SUBSCRIBER_NAME}`, 'm').exec(list);
    expect(subscriber).not.toBeNull();
    await oldServer.admin().client('KILL', 'ID', subscriber![1]);
    expect(
      await waitUntil(async () => {
        const there = String(await observer.client('LIST'));
        return new RegExp(`^id=${next} .*name=${SUBSCRIBER_NAME}.*sub=1`, 'm').test(there);
      }, 5_000),
    ).toBe(true);
    await sleep(200); // the tracking setup that follows the subscriber's ready
    observer.disconnect();

    expect((await request(reader.url).get('/read').set('Cookie', cookie).expect(200)).body).toMatchObject({
      name: 'v1',
    });
    await request(writer.url).post('/set/name').set('Cookie', cookie).send({ value: 'v2' }).expect(200);
    for (let i = 0; i < 3; i++) {
      const read = await request(reader.url).get('/read').set('Cookie', cookie).expect(200);
      expect(read.body).toMatchObject({ name: 'v2' });
    }
    expect(logger.has(/Near cache is off .*different Redis servers/)).toBe(true);

    // The address moves back (the failover undone): the subscriber, made again a second later, finds the data
    // connection's server, and the near cache is on again without a restart.
    proxy.retarget(oldServer);
    expect(await waitUntil(() => Promise.resolve(logger.has(/Near cache is on again/)), 5_000)).toBe(true);
    await request(writer.url).post('/set/name').set('Cookie', cookie).send({ value: 'v3' }).expect(200);
    expect((await request(reader.url).get('/read').set('Cookie', cookie).expect(200)).body).toMatchObject({
      name: 'v3',
    });
  });
});

describe('near cache configuration', () => {
  let server: RedisServerProcess;

  beforeAll(async () => {
    server = await RedisServerProcess.start({ password: 'near-secret' });
    await server
      .admin()
      .call('ACL', 'SETUSER', 'notracking', 'on', '>pw', '~*', '+@all', '-client', '-subscribe');
  });
  afterAll(() => server.stop());

  const start = (redis: RedisCacheOptions, extra: { store?: MemorySessionStore } = {}) =>
    startSessionApp({ secrets: SECRETS, redis, ...extra });

  it('is refused with Redis Cluster, naming the option', async () => {
    await expect(start({ clusterNodes: ['127.0.0.1:7000'], nearCache: true })).rejects.toThrow(
      RedisConfigurationError,
    );
    await expect(start({ clusterNodes: ['127.0.0.1:7000'], nearCache: true })).rejects.toThrow(
      /nearCache is not available with Redis Cluster yet: remove nearCache/,
    );
  });

  it('rejects bad bounds, naming the option', async () => {
    const base = { host: server.host, port: server.port, accessKey: 'near-secret' };
    await expect(start({ ...base, nearCache: { maxEntries: 0 } })).rejects.toThrow(
      /nearCache\.maxEntries must be an integer from 1/,
    );
    await expect(start({ ...base, nearCache: { maxAgeInMilliseconds: 1.5 } })).rejects.toThrow(
      /nearCache\.maxAgeInMilliseconds must be an integer/,
    );
    await expect(start({ ...base, nearCache: 'yes' as unknown as boolean })).rejects.toThrow(
      /nearCache must be true, false or \{ maxEntries, maxAgeInMilliseconds \}/,
    );
  });

  it('excludes session.lock', async () => {
    const redis = { host: server.host, port: server.port, accessKey: 'near-secret', nearCache: true };
    await expect(startSessionApp({ secrets: SECRETS, redis, session: { lock: true } })).rejects.toThrow(
      /redis\.nearCache and session\.lock exclude each other/,
    );
  });

  it('refuses a client that already serves another near cache', async () => {
    const client = new Redis({
      host: server.host,
      port: server.port,
      password: 'near-secret',
      lazyConnect: true,
    });
    const first = await start({ client, nearCache: true });
    try {
      await expect(start({ client, nearCache: true })).rejects.toThrow(
        /this client already serves another near cache.*Give each SessionModule its own client/,
      );
      expect(await client.call('CLIENT', 'TRACKINGINFO')).toContainEqual(['on']);
    } finally {
      await first.app.close();
    }
    // The app's own client stays open, with tracking off again.
    expect(client.status).toBe('ready');
    expect(await client.call('CLIENT', 'TRACKINGINFO')).toContainEqual(['off']);
    client.disconnect();
  });

  it('refuses the second of two near caches starting at the same time on one client', async () => {
    const client = new Redis({
      host: server.host,
      port: server.port,
      password: 'near-secret',
      lazyConnect: true,
    });
    await client.connect();
    const results = await Promise.allSettled([
      start({ client, nearCache: true }),
      start({ client, nearCache: true }),
    ]);
    const started = results.filter(
      (r): r is PromiseFulfilledResult<{ app: INestApplication; url: string }> => r.status === 'fulfilled',
    );
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const { value } of started) await value.app.close();
    expect(started).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(String(refused[0].reason)).toMatch(/already serves another near cache/);
    client.disconnect();
  });

  it('excludes a custom store', async () => {
    const redis = { host: server.host, port: server.port, accessKey: 'near-secret', nearCache: true };
    await expect(start(redis, { store: new MemorySessionStore() })).rejects.toThrow(
      SessionConfigurationError,
    );
    await expect(start(redis, { store: new MemorySessionStore() })).rejects.toThrow(
      /redis\.nearCache and store exclude each other/,
    );
  });

  it('fails startup, naming the option and the ACL to grant, when the user may not use CLIENT TRACKING', async () => {
    const redis = {
      host: server.host,
      port: server.port,
      username: 'notracking',
      accessKey: 'pw',
      nearCache: true,
    };
    await expect(start(redis)).rejects.toThrow(
      /Redis option nearCache could not be set up: .*NOPERM.*\+client\|id \+client\|tracking \+client\|setname \+subscribe &__redis__:invalidate \+ping.*or remove nearCache/s,
    );
    // Nothing left connected by the failed start.
    const list = (await server.admin().client('LIST')) as string;
    expect(list).not.toMatch(/user=notracking/);
  });

  it('starts with exactly the permissions the message asks for', async () => {
    await server.admin().call(
      'ACL',
      'SETUSER',
      'advised',
      'on',
      '>pw',
      '~*',
      '+@all',
      '-@pubsub',
      '-client',
      '-ping',
      '-info', // optional: the check that both connections reach one server is skipped without it
      'resetchannels',
      '+client|id',
      '+client|tracking',
      '+client|setname',
      '+subscribe',
      '&__redis__:invalidate',
      '+ping',
    );
    const { app } = await start({
      host: server.host,
      port: server.port,
      username: 'advised',
      accessKey: 'pw',
      nearCache: true,
    });
    await app.close();
  });
});
