import type { INestApplication } from '@nestjs/common';
import type { SessionModuleOptions } from 'nest-session-state';
import { Redis } from 'ioredis';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { gate, GatedSessionController, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';
import {
  LoopbackClient,
  SECRETS,
  SESSION_COOKIE,
  SessionClient,
  sleep,
  waitUntil,
  type HttpResult,
} from './support/load.js';

/**
 * Issue 8, part 4: the whole story of an outage of a standalone Redis, seen from the app. While the
 * server is down, requests that do not need the session answer normally and fast; those that do answer
 * within operationTimeoutInMilliseconds: without session data (throwOnError: false) or 503 (the
 * default); never hang. `commit()` throws a clear error. When the server is back, the next requests
 * work without restarting the app, and the log says "Redis is failing" once per outage and "Redis answers
 * again" once when it ends.
 *
 * The server writes an append-only file (fsync always), so the data written before the outage is there
 * after it: the story also shows that nothing was lost or half-written in between.
 */
const OPERATION_TIMEOUT = 600;
/** Slack over the operation timeout for a loaded CI machine (Nest, Jest and Redis share 2 cores). */
const SLACK = 500;
/**
 * The outage story's operation timeout, and its bound for a request that does not need Redis while
 * Redis refuses connections: half of it. A request held until the operation timeout fails the bound;
 * a pause of this whole Jest process (a major GC of a heap that holds every suite of the run) does not:
 * a 300 ms bound once failed at 610 ms on a loaded CI run, with the request touching no Redis.
 * Refused commands fail at once, so the longer timeout costs the story no time.
 */
const OUTAGE_OPERATION_TIMEOUT = 2_000;
const FAST = OUTAGE_OPERATION_TIMEOUT / 2;

const failing = (logger: CaptureLogger) => logger.lines.filter((l) => /Redis is failing/.test(l.message));
const answering = (logger: CaptureLogger) =>
  logger.lines.filter((l) => /Redis answers again/.test(l.message));
const json = (res: HttpResult) => JSON.parse(res.body) as Record<string, unknown>;

describe('an outage of a standalone Redis', () => {
  let server: RedisServerProcess;
  let app: INestApplication | undefined;
  const client = new LoopbackClient();

  beforeAll(async () => {
    server = await RedisServerProcess.start({
      extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'],
    });
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
    if (!server.isRunning()) await server.restart();
  });

  afterAll(async () => {
    client.close();
    await server.stop();
  });

  /** One app per test: Nest's static Logger goes to the last app's logger, so two apps would mix logs. */
  async function start(redis: SessionModuleOptions['redis'], logger: CaptureLogger): Promise<string> {
    const started = await startSessionApp(
      {
        secrets: SECRETS,
        redis: {
          host: server.host,
          port: server.port,
          operationTimeoutInMilliseconds: OPERATION_TIMEOUT,
          ...redis,
        },
      },
      { logger },
    );
    app = started.app;
    return started.url;
  }

  async function waitForRecovery(s: SessionClient, url: string): Promise<HttpResult> {
    let last: HttpResult | undefined;
    await waitUntil(
      async () => {
        last = await s.send('GET', url, '/read');
        return last.status === 200 && json(last).available === true;
      },
      5_000,
      100,
    );
    return last!;
  }

  it('throwOnError (default): 503 within the operation timeout, never a hang; the rest of the app unaffected; back without a restart; logged once per outage', async () => {
    const logger = new CaptureLogger();
    const url = await start({ operationTimeoutInMilliseconds: OUTAGE_OPERATION_TIMEOUT }, logger);
    const known = new SessionClient('known', client);
    await known.send('GET', url, '/counter');
    await known.send('GET', url, '/counter');
    expect(json(await known.send('POST', url, '/set/name', { json: { value: 'before' } })).keys).toEqual([
      'count',
      'name',
    ]);

    for (let outage = 1; outage <= 2; outage++) {
      await server.kill();
      const during: HttpResult[] = [];
      // Requests that need no session data answer normally and fast, with or without a session cookie.
      for (let i = 0; i < 5; i++) {
        const untouched = await known.send('GET', url, '/untouched');
        expect(untouched.status).toBe(200);
        expect(untouched.ms).toBeLessThan(FAST);
        const stranger = await client.send('GET', `${url}/read`);
        expect(stranger.status).toBe(200); // no cookie: nothing to load, an empty session
        expect(json(stranger)).toMatchObject({ available: true, keys: [] });
        expect(stranger.ms).toBeLessThan(FAST);
      }
      // Requests that need it: 503 at once or within the operation timeout, for many concurrent ones too.
      const strangers = Array.from({ length: 10 }, (_, i) => new SessionClient(`new${i}`, client));
      const results = await Promise.all([
        ...Array.from({ length: 10 }, () => known.send('GET', url, '/counter')),
        ...Array.from({ length: 10 }, () => known.send('GET', url, '/read')),
        known.send('POST', url, '/explicit-commit'),
        ...strangers.map((s) => s.send('GET', url, '/counter')), // a new session cannot be stored
      ]);
      during.push(...results);
      for (const res of during) {
        expect(res.status).toBe(503);
        expect(res.ms).toBeLessThan(OUTAGE_OPERATION_TIMEOUT + SLACK);
      }
      for (const s of strangers) expect(s.jar.get(SESSION_COOKIE)).toBeUndefined(); // no cookie for nothing
      expect(failing(logger)).toHaveLength(outage);
      expect(answering(logger)).toHaveLength(outage - 1);

      await server.restart();
      const back = await waitForRecovery(known, url);
      expect(json(back)).toMatchObject({ available: true, count: 2 * outage, name: 'before' }); // nothing lost
      expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 2 * outage + 1 });
      expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 2 * outage + 2 });
      expect(answering(logger)).toHaveLength(outage);
      expect(failing(logger)).toHaveLength(outage);
    }
    // At most one more warning per outage (rate-limited) besides "Redis is failing": not one per request.
    const warnings = logger.lines.filter((l) => l.level === 'warn' || l.level === 'error');
    expect(warnings.length).toBeLessThanOrEqual(4);
  }, 30_000);

  /** An app whose session holds count 1, on a Redis then made full (maxmemory, noeviction): commits are refused. */
  async function onFullRedis(logger: CaptureLogger) {
    const url = await start({}, logger);
    const known = new SessionClient('known', client);
    expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 1 });
    const admin = server.admin();
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    return { url, known, admin };
  }

  it('a full Redis (maxmemory, noeviction) refuses every commit while loads work: 503s, logged once when it fills and once when it has room again', async () => {
    const logger = new CaptureLogger();
    const { url, known, admin } = await onFullRedis(logger);
    try {
      for (let i = 0; i < 4; i++) {
        expect((await known.send('GET', url, '/read')).status).toBe(200); // a load: refused by nothing
        expect((await known.send('GET', url, '/counter')).status).toBe(503); // its commit: OOM
      }
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 2 }); // nothing of the 503s applied
    const events = logger.lines
      .map((line) => /^\[(SessionStoreUnavailable|SessionStoreRecovered)\]/.exec(line.message)?.[1])
      .filter((event) => event !== undefined);
    expect(events).toEqual(['SessionStoreUnavailable', 'SessionStoreRecovered']);
    expect(
      logger.has(/^\[SessionStoreUnavailable\] Redis is failing \(SESSION COMMIT: .*OOM command not allowed/),
    ).toBe(true);
  });

  it('a refused commit that is never tried again: the outage log ends on any success once 10 s passed without a refusal', async () => {
    const logger = new CaptureLogger();
    const { url, known, admin } = await onFullRedis(logger);
    const recovered = () => logger.lines.some((line) => line.message.startsWith('[SessionStoreRecovered]'));
    try {
      expect((await known.send('GET', url, '/counter')).status).toBe(503); // its commit: OOM
      expect((await known.send('GET', url, '/read')).status).toBe(200);
      expect(recovered()).toBe(false); // a load soon after: the full Redis still refuses commits
      await sleep(10_500); // no commit tried meanwhile (Redis is still full)
      expect((await known.send('GET', url, '/read')).status).toBe(200);
      expect(recovered()).toBe(true);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
  }, 20_000);

  it('throwOnError: false: the page renders without session data, commit() throws SessionUnavailableError, data intact afterwards', async () => {
    const logger = new CaptureLogger();
    const url = await start({ throwOnError: false }, logger);
    const known = new SessionClient('known', client);
    await known.send('GET', url, '/counter');
    await known.send('POST', url, '/set/name', { json: { value: 'kept' } });

    await server.kill();
    for (let i = 0; i < 5; i++) {
      const read = await known.send('GET', url, '/read');
      expect(read.status).toBe(200);
      expect(json(read)).toEqual({ available: false, keys: [], count: null, name: null });
      expect(read.ms).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    }
    const counter = await known.send('GET', url, '/counter');
    expect(counter.status).toBe(200); // the page works, without the stored count
    expect(counter.ms).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    const commit = await known.send('POST', url, '/explicit-commit');
    expect(json(commit)).toEqual({ committed: false, error: 'SessionUnavailableError' });
    const stranger = new SessionClient('stranger', client);
    const strangerCommit = await stranger.send('POST', url, '/explicit-commit');
    expect(strangerCommit.status).toBe(200);
    // A session that was never loaded (no cookie) fails at the store itself: the error is the store's
    // RedisOperationError rather than SessionUnavailableError (see the report on issue 8).
    expect(json(strangerCommit)).toEqual({
      committed: false,
      error: expect.stringMatching(/^(SessionUnavailableError|RedisOperationError)$/),
    });
    expect(failing(logger)).toHaveLength(1);

    await server.restart();
    const back = await waitForRecovery(known, url);
    expect(json(back)).toMatchObject({ available: true, count: 1, name: 'kept' }); // no write leaked through
    expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 2 });
    expect(failing(logger)).toHaveLength(1);
    expect(answering(logger)).toHaveLength(1);
  }, 30_000);

  it('a session.ioTimeout shorter than what the Redis options allow (operation timeout 5 s) still bounds the request', async () => {
    const logger = new CaptureLogger();
    const IO_TIMEOUT = 400;
    const started = await startSessionApp(
      {
        secrets: SECRETS,
        session: { ioTimeout: IO_TIMEOUT },
        redis: { host: server.host, port: server.port, operationTimeoutInMilliseconds: 5_000 },
      },
      { logger },
    );
    app = started.app;
    const known = new SessionClient('known', client);
    await known.send('GET', started.url, '/counter');
    await server.pause(1_500);
    const stalled = await known.send('GET', started.url, '/read');
    expect(stalled.status).toBe(503);
    expect(stalled.ms).toBeGreaterThanOrEqual(IO_TIMEOUT - 20);
    expect(stalled.ms).toBeLessThan(IO_TIMEOUT + SLACK);
    await sleep(1_500);
    expect(json(await waitForRecovery(known, started.url)).count).toBe(1);
  }, 30_000);

  it('a commit answered 503 at a session.ioTimeout shorter than the Redis timeouts does not apply once Redis answers', async () => {
    const IO_TIMEOUT = 400;
    const started = await startSessionApp(
      {
        secrets: SECRETS,
        session: { ioTimeout: IO_TIMEOUT },
        redis: { host: server.host, port: server.port, operationTimeoutInMilliseconds: 5_000 },
      },
      { controllers: [GatedSessionController] },
    );
    app = started.app;
    const known = new SessionClient('short-io', client);
    expect(json(await known.send('GET', started.url, '/counter'))).toEqual({ count: 1 });
    const held = gate('short-io-commit');
    const pending = known.send('POST', started.url, '/gated/short-io-commit/increment');
    try {
      await held.reached(1); // loaded; its commit goes out once the gate opens
      await server.pause(1_500);
      held.release();
      const late = await pending;
      expect(late.status).toBe(503);
      expect(late.ms).toBeLessThan(IO_TIMEOUT + SLACK + 1_000);
    } finally {
      releaseAllGates();
    }
    await sleep(1_500); // Redis answers again and runs what was queued: the commit, past its deadline
    expect(json(await waitForRecovery(known, started.url)).count).toBe(1);
  }, 30_000);

  it('session.lock: a lock whose release fell in the outage is released once Redis is back, not held for its TTL', async () => {
    const TTL = 15_000;
    const started = await startSessionApp(
      {
        secrets: SECRETS,
        session: { lock: { ttl: TTL, acquireTimeout: 3_000 } },
        redis: { host: server.host, port: server.port, operationTimeoutInMilliseconds: OPERATION_TIMEOUT },
      },
      { controllers: [GatedSessionController], logger: new CaptureLogger() },
    );
    app = started.app;
    const known = new SessionClient('locked', client);
    expect(json(await known.send('GET', started.url, '/counter'))).toEqual({ count: 1 });
    const held = gate('outage-lock');
    const pending = known.send('POST', started.url, '/gated/outage-lock/increment');
    try {
      await held.reached(1); // it holds the lock (kept in the append-only file)
      await server.kill();
      held.release();
      expect((await pending).status).toBe(503); // its commit and its release failed
    } finally {
      releaseAllGates();
    }
    await server.restart();
    const back = Date.now();
    let counted: HttpResult | undefined;
    await waitUntil(
      async () => (counted = await known.send('GET', started.url, '/counter')).status === 200,
      TTL,
      100,
    );
    expect(json(counted!)).toEqual({ count: 2 }); // the failed increment applied nothing
    expect(Date.now() - back).toBeLessThan(TTL / 2); // released by a retry, not expired
  }, 60_000);

  it.each([
    ['its own connection', undefined],
    ["an app's client whose commandTimeout is shorter than the operation timeout", OPERATION_TIMEOUT / 2],
  ] as const)(
    'a connection that went silent (a network path that dropped it), %s: made again once it said nothing for twice the operation timeout, not when the kernel gives up',
    async (_which, commandTimeout) => {
      const proxy = await StallProxy.start(server);
      const appClient =
        commandTimeout === undefined
          ? undefined
          : new Redis({ host: proxy.host, port: proxy.port, commandTimeout });
      try {
        const logger = new CaptureLogger();
        const url = appClient
          ? await start({ client: appClient, host: undefined, port: undefined }, logger)
          : await start({ host: proxy.host, port: proxy.port }, logger);
        const known = new SessionClient('known', client);
        expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 1 });
        proxy.cutOff(); // the socket stays open and carries nothing, as behind a NAT that forgot it
        const cutAt = performance.now();
        const answered = await waitForRecovery(known, url);
        const ms = performance.now() - cutAt;
        expect(json(answered).count).toBe(1);
        // Timed out first at one operation timeout (or the client's own), silent since then for two more: connected again.
        expect(ms).toBeGreaterThanOrEqual((commandTimeout ?? OPERATION_TIMEOUT) + 2 * OPERATION_TIMEOUT - 20);
        expect(ms).toBeLessThan(5 * OPERATION_TIMEOUT + SLACK);
        expect(logger.has(/^\[RedisConnectionSilent\] Redis sent nothing on the connection for \d+ ms/)).toBe(
          true,
        );
        expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 2 });
      } finally {
        await app?.close();
        app = undefined;
        appClient?.disconnect();
        await proxy.stop();
      }
    },
  );

  it.each([
    ['ALL', 'past the silence check', 5],
    ['WRITE', 'past the silence check', 5],
    // Ends while the check's second connection waits for its answer: both connections are answered at once.
    ['ALL', 'ending during the silence check', 3.5],
  ] as const)(
    "a server that is only slow (CLIENT PAUSE %s %s) keeps the connection: an app client's command in flight runs once",
    async (mode, _when, timeouts) => {
      const logger = new CaptureLogger();
      const appClient = new Redis(server.clientOptions()); // ioredis' defaults: it sends unanswered commands again
      try {
        const started = await startSessionApp(
          {
            secrets: SECRETS,
            redis: { client: appClient, operationTimeoutInMilliseconds: OPERATION_TIMEOUT },
          },
          { logger },
        );
        app = started.app;
        const known = new SessionClient('known', client);
        expect(json(await known.send('GET', started.url, '/counter'))).toEqual({ count: 1 });
        await appClient.del('app-counter');
        // WRITE: a PING would be answered, while every script (session loads and commits) waits.
        const pauseEnds = Date.now() + timeouts * OPERATION_TIMEOUT;
        await server.pause(timeouts * OPERATION_TIMEOUT, mode);
        const incremented = appClient.incr('app-counter');
        // Session requests time out behind the pause, again and again: a silence, but the server is the one stalled.
        const statuses = new Set<number>();
        while (Date.now() < pauseEnds - OPERATION_TIMEOUT / 2)
          statuses.add((await known.send('GET', started.url, '/read')).status);
        expect(statuses.has(503)).toBe(true);
        expect([...statuses].filter((status) => status !== 503 && status !== 200)).toEqual([]); // a retry may bridge the end
        expect(await incremented).toBe(1);
        expect(await appClient.get('app-counter')).toBe('1');
        expect(logger.has(/RedisConnectionSilent/)).toBe(false);
        expect(json(await waitForRecovery(known, started.url)).count).toBe(1);
      } finally {
        await app?.close();
        app = undefined;
        appClient.disconnect();
      }
    },
  );

  it('app.close() with Redis hung (stopped, its connections open) ends within the operation timeouts, near cache included', async () => {
    const url = await start({ nearCache: true }, new CaptureLogger());
    const known = new SessionClient('known', client);
    expect((await known.send('GET', url, '/counter')).status).toBe(200);
    server.freeze();
    const closing = app!.close();
    app = undefined;
    try {
      const startedAt = performance.now();
      // Before, QUIT waited for an answer for ever: SIGTERM left the process running until SIGKILL.
      const closed = await Promise.race([closing.then(() => true), sleep(5_000).then(() => false)]);
      expect(closed).toBe(true);
      // The invalidation subscriber's QUIT, then the data connection's: each bounded by the operation timeout.
      expect(performance.now() - startedAt).toBeLessThan(3 * OPERATION_TIMEOUT + SLACK);
    } finally {
      server.thaw();
      await closing;
    }
  });

  it('a server that hangs instead of refusing (CLIENT PAUSE): 503 after the operation timeout, no request hangs; a blip shorter than retryTimeoutInMilliseconds is bridged', async () => {
    const logger = new CaptureLogger();
    const url = await start({}, logger);
    const known = new SessionClient('known', client);
    await known.send('GET', url, '/counter');

    await server.pause(2_000);
    const [untouched, ...stalled] = await Promise.all([
      known.send('GET', url, '/untouched'),
      ...Array.from({ length: 10 }, () => known.send('GET', url, '/read')),
    ]);
    for (const res of stalled) {
      expect(res.status).toBe(503);
      expect(res.ms).toBeGreaterThanOrEqual(OPERATION_TIMEOUT - 20);
      expect(res.ms).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    }
    expect(untouched.status).toBe(200);
    expect(untouched.ms).toBeLessThan(OPERATION_TIMEOUT); // did not wait for the stalled server
    await sleep(2_000);
    expect(json(await waitForRecovery(known, url)).count).toBe(1);
    await app!.close();

    // With retries (first after 20 ms, then every second) a short stall costs time, not a failure.
    const url2 = await start(
      { retryTimeoutInMilliseconds: 2_500, operationTimeoutInMilliseconds: 300 },
      logger,
    );
    await server.pause(800);
    const bridged = await known.send('GET', url2, '/counter');
    expect(bridged.status).toBe(200);
    expect(json(bridged)).toEqual({ count: 2 });
    console.log(
      `an 800 ms stall with retryTimeoutInMilliseconds 2500: answered 200 after ${bridged.ms.toFixed(0)} ms`,
    );
    expect(bridged.ms).toBeLessThan(2_500 + 300 + SLACK);
  }, 30_000);
});

/**
 * Redis refuses the app's credentials after it connected (a rotated requirepass, an ACL user changed): the outage's
 * first line names the symptom on a command; the refusal itself is logged once, naming the options to check, and
 * again only in a later outage.
 */
describe('a Redis that stops taking the credentials the app connected with', () => {
  const PASSWORD = 'first-pass-0123456789';
  let server: RedisServerProcess;
  const client = new LoopbackClient();
  beforeAll(async () => {
    server = await RedisServerProcess.start({ password: PASSWORD });
  });
  afterAll(async () => {
    client.close();
    await server.stop();
  });

  it('logs RedisAuthenticationFailed once, naming accessKey and username; answers again once the password is back', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp(
      {
        secrets: SECRETS,
        redis: {
          host: server.host,
          port: server.port,
          accessKey: PASSWORD,
          operationTimeoutInMilliseconds: 500,
        },
      },
      { logger },
    );
    const refusals = () => logger.lines.filter((l) => l.message.startsWith('[RedisAuthenticationFailed]'));
    try {
      const known = new SessionClient('known', client);
      expect(json(await known.send('GET', url, '/counter'))).toEqual({ count: 1 });
      const admin = server.admin();
      await admin.config('SET', 'requirepass', 'rotated-pass-9876543210');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await waitUntil(() => refusals().length > 0, 5_000);
      for (let i = 0; i < 3; i++) expect((await known.send('GET', url, '/counter')).status).toBe(503);
      await sleep(1_500); // reconnects refused meanwhile
      expect(refusals()).toHaveLength(1);
      expect(refusals()[0].level).toBe('error');
      expect(refusals()[0].message).toMatch(
        /\((WRONGPASS|NOAUTH)[^)]*\): check redis\.accessKey and redis\.username/,
      );
      expect(refusals()[0].message).not.toContain('rotated-pass');
      await admin.config('SET', 'requirepass', PASSWORD);
      let read: HttpResult | undefined;
      await waitUntil(async () => {
        read = await known.send('GET', url, '/read');
        return read.status === 200 && json(read).available === true;
      }, 5_000);
      expect(json(read!)).toMatchObject({ count: 1 }); // the refused requests applied nothing
      expect(logger.lines.some((l) => l.message.startsWith('[SessionStoreRecovered]'))).toBe(true);
    } finally {
      await app.close();
    }
  }, 20_000);
});
