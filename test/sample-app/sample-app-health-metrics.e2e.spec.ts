/**
 * The sample app's `GET /health` (terminus with the session store's indicator) and `GET /metrics`
 * (Prometheus text from an OpenTelemetry SDK MeterProvider), on Redis, once per platform: 200 with
 * the store up, 503 with it stopped (within the operation timeout), 200 again after it restarts; the
 * session metrics after real traffic; neither route creates a session.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { RedisServerProcess } from '../support/redis/index.js';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess } from './support/sample-app.process.js';

/** One sample of a Prometheus metric with the given labels (order-insensitive), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const has = Object.entries(labels).every(([k, v]) => match[2].split(',').includes(`${k}="${v}"`));
    if (has) return Number(match[3]);
  }
  return undefined;
}

describe.each(SAMPLE_APP_PLATFORMS)('sample app on %s: /health and /metrics', (platform) => {
  let redis: RedisServerProcess;
  let app: SampleAppProcess;

  beforeAll(async () => {
    await ensureBuilt();
    redis = await RedisServerProcess.start();
    app = await SampleAppProcess.start({
      env: { HTTP_ADAPTER: platform, REDIS_URL: `redis://${redis.host}:${redis.port}` },
    });
  }, BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await app?.stop();
    await redis?.stop();
  });

  const get = (path: string, cookie?: string) =>
    fetch(`${app.url}${path}`, { headers: cookie ? { cookie } : {} });

  test('GET /metrics: the session metrics after traffic, in Prometheus text; no session', async () => {
    let cookie: string | undefined;
    for (let i = 1; i <= 3; i++) {
      const res = await get('/counter', cookie);
      expect(await res.json()).toEqual({ count: i });
      cookie ??= res.headers.get('set-cookie')!.split(';')[0];
    }
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers.get('set-cookie')).toBeNull();
    const text = await res.text();
    expect(text).toContain('# TYPE session_commits_total counter');
    expect(sample(text, 'session_commits_total', { session_store: 'redis' })).toBe(3);
    expect(sample(text, 'session_loads_total', { session_store: 'redis', session_found: 'true' })).toBe(2);
    expect(sample(text, 'session_commit_duration_count', { session_store: 'redis' })).toBe(3);
  });

  test('GET /health: 200 with Redis up, 503 with it stopped, 200 after it restarts; no session', async () => {
    const up = await get('/health');
    expect(up.status).toBe(200);
    expect(up.headers.get('set-cookie')).toBeNull();
    expect(await up.json()).toMatchObject({
      status: 'ok',
      details: { 'session-store': { status: 'up', store: 'redis' } },
    });

    await redis.kill();
    try {
      let down: Response | undefined;
      for (let i = 0; i < 30; i++) {
        const started = Date.now();
        down = await get('/health');
        expect(Date.now() - started).toBeLessThan(3000);
        if (down.status === 503) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(down!.status).toBe(503);
      expect(down!.headers.get('set-cookie')).toBeNull();
      const body = (await down!.json()) as {
        status: string;
        details: Record<string, { status: string; message: string }>;
      };
      expect(body.status).toBe('error');
      expect(body.details['session-store'].status).toBe('down');
      expect(body.details['session-store'].message).toMatch(/^Redis at 127\.0\.0\.1:\d+ /);
    } finally {
      await redis.restart();
    }
    let back: Response | undefined;
    for (let i = 0; i < 100; i++) {
      back = await get('/health');
      if (back.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(back!.status).toBe(200);
  });
});
