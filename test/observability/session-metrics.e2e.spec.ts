/**
 * Session metrics read back from a real OpenTelemetry SDK MeterProvider after real traffic: loads,
 * commits and their duration, failures by operation and reason (Redis stopped, a commit stalled past
 * its timeout), lock waits, near-cache hits and misses; nothing at all when metrics are off.
 */
import { randomBytes } from 'node:crypto';
import { metrics } from '@opentelemetry/api';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { SessionMetricNames, type SessionModuleOptions } from 'nest-session-state';
import { SessionRuntime } from '../../libs/session-state/src/session/session.runtime.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { CommandMonitor } from '../support/redis/command-monitor.js';
import { TestMetrics } from './support/test-metric-reader.js';

const COOKIE = '.Nest.Session';
const { loads, commits, failures, lockWaits, nearCacheHits, nearCacheMisses, commitDuration } =
  SessionMetricNames;

let telemetry: TestMetrics;
let running: INestApplication | undefined;
beforeEach(() => {
  telemetry = new TestMetrics();
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  await telemetry.shutdown();
});

async function start(options: SessionModuleOptions): Promise<string> {
  const { app, url } = await startSessionApp(options);
  running = app;
  return url;
}

/** Redis options that give up on a silent Redis quickly (250 ms, no retry), to `endpoint` (a server or a proxy). */
function failingFast(endpoint: { host: string; port: number }) {
  return {
    host: endpoint.host,
    port: endpoint.port,
    operationTimeoutInMilliseconds: 250,
    retryTimeoutInMilliseconds: 0,
  };
}

/** `n` requests to `path` in one browser session; returns its cookie. */
async function visit(url: string, path: string, n: number, cookie?: string): Promise<string> {
  for (let i = 0; i < n; i++) {
    const res = await request(url)
      .get(path)
      .set('Cookie', cookie ?? '')
      .expect(200);
    cookie ??= cookiePair(res, COOKIE);
  }
  return cookie!;
}

describe('session metrics (OpenTelemetry)', () => {
  it('memory store: loads, commits and commit duration after N requests', async () => {
    const url = await start({ metrics: { meterProvider: telemetry.meterProvider } });
    const cookie = await visit(url, '/counter', 5);
    await visit(url, '/untouched', 3, cookie); // never loads the session
    const store = { 'session.store': 'memory' };
    // The first request had no cookie: nothing to load.
    expect(await telemetry.count(loads, { ...store, 'session.found': true })).toBe(4);
    expect(await telemetry.count(loads, { 'session.found': false })).toBe(0);
    expect(await telemetry.count(commits, store)).toBe(5);
    const duration = await telemetry.histogram(commitDuration);
    expect(duration).toMatchObject({ count: 5, unit: 's' });
    expect(duration.sum).toBeGreaterThan(0);
    expect(duration.sum).toBeLessThan(1);
    expect(await telemetry.count(failures)).toBe(0);

    await request(url).post('/abandon').set('Cookie', cookie).expect(200);
    expect(await telemetry.count(commits, store)).toBe(6); // the abandoned session's removal is a write
    expect((await telemetry.histogram(commitDuration)).count).toBe(6);
    await request(url).get('/read').set('Cookie', cookie).expect(200);
    expect(await telemetry.count(loads, { 'session.found': false })).toBe(1);
  });

  it('lock waits: a request that waits for the lock another holds is counted', async () => {
    const url = await start({ metrics: { meterProvider: telemetry.meterProvider }, session: { lock: true } });
    const cookie = await visit(url, '/counter', 1);
    await Promise.all([
      request(url).get('/slow-counter').set('Cookie', cookie).expect(200),
      request(url).get('/slow-counter').set('Cookie', cookie).expect(200),
    ]);
    expect(await telemetry.count(lockWaits, { 'session.store': 'memory' })).toBeGreaterThan(0);
  });

  it('off without an SDK (no global provider), on with a global one, off again with metrics: false', async () => {
    await start({});
    expect(running!.get(SessionRuntime).metrics).toBeUndefined();
    await running!.close();
    running = undefined;

    metrics.setGlobalMeterProvider(telemetry.meterProvider);
    try {
      const url = await start({});
      await visit(url, '/counter', 3);
      expect(await telemetry.count(commits)).toBe(3);
      await running!.close();

      const off = await start({ metrics: false });
      await visit(off, '/counter', 3);
      expect(running!.get(SessionRuntime).metrics).toBeUndefined();
      expect(await telemetry.count(commits)).toBe(3);
    } finally {
      metrics.disable();
    }
  });

  it('a metrics option that is not a provider or meter fails startup, saying what it takes', async () => {
    await expect(
      startSessionApp({ metrics: { meterProvider: {} } } as unknown as SessionModuleOptions),
    ).rejects.toThrow(
      'SessionModule option metrics must be false, { meterProvider } (an OpenTelemetry MeterProvider) or { meter }',
    );
  });

  describe('Redis', () => {
    let server: RedisServerProcess;
    beforeAll(async () => {
      server = await RedisServerProcess.start();
    });
    afterAll(() => server.stop());

    it('counts loads and commits, and a load failure while Redis is down', async () => {
      const url = await start({
        metrics: { meterProvider: telemetry.meterProvider },
        redis: failingFast(server),
      });
      const cookie = await visit(url, '/counter', 3);
      const store = { 'session.store': 'redis' };
      expect(await telemetry.count(loads, store)).toBe(2);
      expect(await telemetry.count(commits, store)).toBe(3);

      await server.kill();
      try {
        await request(url).get('/read').set('Cookie', cookie).expect(503); // throwOnError (the default)
        expect(await telemetry.count(failures, { ...store, 'session.operation': 'load' })).toBe(1);
        const [point] = ((await telemetry.collect()).get(failures)?.dataPoints ?? []) as {
          attributes: Record<string, unknown>;
        }[];
        expect(String(point.attributes['error.type'])).toMatch(/^(unavailable|timeout|E[A-Z]+)$/);
      } finally {
        await server.restart();
      }
    });

    it('counts a commit that timed out as a commit failure of type timeout', async () => {
      const proxy = await StallProxy.start(server);
      try {
        const url = await start({
          metrics: { meterProvider: telemetry.meterProvider },
          redis: failingFast(proxy),
        });
        const cookie = await visit(url, '/counter', 1);
        const hold = proxy.holdWhen('stalled-commit-marker', 1000);
        await request(url).post('/set/x').set('Cookie', cookie).send({ value: 'stalled-commit-marker' });
        expect(hold.engaged).toBe(true);
        expect(
          await telemetry.count(failures, { 'session.operation': 'commit', 'error.type': 'timeout' }),
        ).toBe(1);
        await hold.answered;
      } finally {
        await running?.close();
        running = undefined;
        await proxy.stop();
      }
    });

    it('a failed slide of an untouched session is counted and logged, and the next untouched request slides it again', async () => {
      const proxy = await StallProxy.start(server);
      const secrets = [randomBytes(32).toString('base64url')]; // both instances read the cookie
      const logger = new CaptureLogger();
      const monitor = await CommandMonitor.start(server);
      const instanceOptions: SessionModuleOptions = {
        secrets,
        metrics: { meterProvider: telemetry.meterProvider },
        redis: failingFast(proxy),
      };
      try {
        const { app, url } = await startSessionApp(instanceOptions, { logger });
        running = app;
        const cookie = await visit(url, '/counter', 1);
        const signed = cookie.slice(cookie.indexOf('=') + 1);
        const key = signed.slice(0, signed.lastIndexOf('.'));
        // A second instance's slide memory knows nothing of this session: the first one slid it at its commit.
        const { app: other, url: otherUrl } = await startSessionApp(instanceOptions, { logger });
        try {
          const hold = proxy.holdWhen(key, 1000);
          await request(otherUrl).get('/untouched').set('Cookie', cookie).expect(200);
          // The slide goes out after the response.
          for (let waited = 0; !hold.engaged && waited < 2000; waited += 10)
            await new Promise((r) => setTimeout(r, 10));
          expect(hold.engaged).toBe(true);
          await hold.released; // the slide timed out meanwhile (250 ms); its reply comes back to nobody
          expect(await telemetry.count(failures, { 'session.operation': 'refresh' })).toBe(1);
          expect(logger.lines.filter((l) => /\[SessionRefreshFailed\]/.test(l.message))).toHaveLength(1);
          expect(logger.text()).not.toContain(key);

          // Not remembered as slid: the next untouched request (well within slideSkipWindow) tries again.
          await monitor.settle();
          monitor.reset();
          await request(otherUrl).get('/untouched').set('Cookie', cookie).expect(200);
          await new Promise((r) => setTimeout(r, 50));
          await monitor.settle();
          expect(monitor.commands()).toEqual(['PEXPIRE']);
          expect(await telemetry.count(failures, { 'session.operation': 'refresh' })).toBe(1);
        } finally {
          await other.close();
        }
      } finally {
        await monitor.stop();
        await running?.close();
        running = undefined;
        await proxy.stop();
      }
    });

    it('near cache: hits and misses', async () => {
      const url = await start({
        metrics: { meterProvider: telemetry.meterProvider },
        redis: { host: server.host, port: server.port, nearCache: {} },
      });
      const cookie = await visit(url, '/counter', 1);
      await visit(url, '/read', 4, cookie);
      const store = { 'session.store': 'redis' };
      expect(await telemetry.count(nearCacheMisses, store)).toBeGreaterThanOrEqual(1);
      expect(await telemetry.count(nearCacheHits, store)).toBeGreaterThanOrEqual(2);
      expect((await telemetry.count(nearCacheHits)) + (await telemetry.count(nearCacheMisses))).toBe(4);
    });
  });
});
