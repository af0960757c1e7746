/**
 * The store of a gateway's sessions goes down and comes back (a real redis-server, SIGKILLed and
 * restarted): a reload fails within the operation timeout with SessionUnavailableError (throwOnError, the
 * Redis default) or gives an unavailable, empty snapshot (throwOnError: false), never hangs or crashes
 * the gateway, and works again once Redis answers, without restarting the app.
 */
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { connectClient, type GatewayClient } from './support/gateway-client.js';
import { startGatewayApp, type SnapshotReply } from './support/gateway-test.app.js';
import { SessionMetricNames, type SessionModuleOptions } from 'nest-session-state';
import { TestMetrics } from '../observability/support/test-metric-reader.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['g4tewayOutag3-k8JdQ0wZr4Vn1pYt6sXc2bLm9gHf3aEu7iOq5yTz0R'];
const OPERATION_TIMEOUT = 500;
const SLACK = 1_500;

describe('gateway sessions while Redis is down', () => {
  let server: RedisServerProcess;
  let app: INestApplication | undefined;
  let client: GatewayClient | undefined;
  /** The last signedInClient's app port and session cookie. */
  let port = 0;
  let cookie = '';

  beforeAll(async () => {
    server = await RedisServerProcess.start({
      extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'],
    });
  });
  afterEach(async () => {
    await client?.close();
    await app?.close();
    client = app = undefined;
    if (!server.isRunning()) await server.restart();
  });
  afterAll(() => server.stop());

  async function signedInClient(
    throwOnError: boolean,
    user: string,
    extra: SessionModuleOptions = {},
  ): Promise<GatewayClient> {
    const started = await startGatewayApp('ws', {
      ...extra,
      secrets: SECRETS,
      redis: {
        host: server.host,
        port: server.port,
        applicationName: `outage-${user}`,
        operationTimeoutInMilliseconds: OPERATION_TIMEOUT,
        throwOnError,
      },
    });
    app = started.app;
    port = started.port;
    cookie = cookiePair(await request(started.url).post('/login').send({ user }).expect(200), COOKIE);
    client = await connectClient('ws', port, cookie);
    expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ user, available: true });
    return client;
  }

  /** Reloads until the store answers again (the Redis client reconnects on its own schedule). */
  async function reloadUntilAnswered(ws: GatewayClient): Promise<SnapshotReply> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const reply = await ws.request<SnapshotReply>('reload');
      if ((reply.error === undefined && reply.available) || Date.now() > deadline) return reply;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const started = Date.now();
    const value = await run();
    return { value, ms: Date.now() - started };
  }

  it('throwOnError: reload throws SessionUnavailableError within the operation timeout; back after Redis restarts', async () => {
    const ws = await signedInClient(true, 'ada');
    await server.kill();
    const { value, ms } = await timed(() => ws.request<SnapshotReply>('reload'));
    expect(value.error).toBe('SessionUnavailableError');
    expect(ms).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    // The failed reload is the latest snapshot: no stale "still signed in" view is served meanwhile.
    expect((await ws.request<SnapshotReply>('snapshot')).error).toBe('SessionUnavailableError');
    await server.restart();
    expect(await reloadUntilAnswered(ws)).toEqual({ user: 'ada', count: null, available: true });
  });

  it('throwOnError false: reload gives an empty snapshot with isAvailable false; back after Redis restarts', async () => {
    const ws = await signedInClient(false, 'grace');
    await server.kill();
    const { value, ms } = await timed(() => ws.request<SnapshotReply>('reload'));
    expect(value).toEqual({ user: null, count: null, available: false });
    expect(ms).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    await server.restart();
    expect(await reloadUntilAnswered(ws)).toEqual({ user: 'grace', count: null, available: true });
  });

  // Nest ignores what handleConnection returns: connect() rejecting there, uncaught, would stop the process.
  it('throwOnError: a client connecting while Redis is down is closed (1011) within the operation timeout; the server goes on', async () => {
    const ws = await signedInClient(true, 'linus');
    await server.kill();
    const started = Date.now();
    const late = await connectClient('ws', port, cookie);
    expect(await late.closedByServer()).toEqual({ code: 1011, reason: 'SessionUnavailableError' });
    expect(Date.now() - started).toBeLessThan(OPERATION_TIMEOUT + SLACK);
    await server.restart();
    expect(await reloadUntilAnswered(ws)).toMatchObject({ user: 'linus', available: true });
    const again = await connectClient('ws', port, cookie);
    expect(await again.request<SnapshotReply>('snapshot')).toMatchObject({ user: 'linus', available: true });
    await again.close();
  });

  it("metrics count a gateway's loads, and its failed load while Redis is down, as an HTTP request's", async () => {
    const telemetry = new TestMetrics();
    try {
      const ws = await signedInClient(true, 'hopper', {
        metrics: { meterProvider: telemetry.meterProvider },
      });
      const { loads, failures } = SessionMetricNames;
      const store = { 'session.store': 'redis' };
      const before = await telemetry.count(loads, { ...store, 'session.found': true });
      await ws.request<SnapshotReply>('reload');
      expect(await telemetry.count(loads, { ...store, 'session.found': true })).toBe(before + 1);
      await server.kill();
      expect((await ws.request<SnapshotReply>('reload')).error).toBe('SessionUnavailableError');
      expect(await telemetry.count(failures, { ...store, 'session.operation': 'load' })).toBe(1);
    } finally {
      await telemetry.shutdown();
    }
  });
});
