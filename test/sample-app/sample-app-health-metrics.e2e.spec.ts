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

  /** Polls `GET /health` until the app reconnected to a restarted Redis (up to 10 s); its last status. */
  async function untilHealthy(): Promise<number> {
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await get('/health')).status;
    }
    return status;
  }

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

  test('with Redis stopped a page is an HTML 503 that says so (a browser), JSON for other clients; no 500', async () => {
    const established = await fetch(`${app.url}/cart/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: 'item=Tea',
      redirect: 'manual',
    });
    expect(established.status).toBe(302);
    const cookie = established.headers.get('set-cookie')!.split(';')[0];
    await redis.kill();
    try {
      const html = { cookie, accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
      for (const [path, init] of [
        ['/cart', {}],
        ['/account', {}],
        ['/cart/add', { method: 'POST', body: 'item=Tea' }],
        ['/prefs/theme', { method: 'POST', body: 'value=dark' }],
      ] as const) {
        const page = await fetch(`${app.url}${path}`, {
          ...init,
          headers: { ...html, 'content-type': 'application/x-www-form-urlencoded' },
          redirect: 'manual',
        });
        expect([path, page.status, page.headers.get('content-type')]).toEqual([
          path,
          503,
          expect.stringMatching(/^text\/html/),
        ]);
        expect(await page.text()).toContain("<h1 id='error-title'>The session store is unavailable</h1>");
      }
      const json = await get('/counter', cookie);
      expect(json.status).toBe(503);
      expect(await json.json()).toMatchObject({ statusCode: 503, code: 'SESSION_UNAVAILABLE' });
    } finally {
      await redis.restart();
      await untilHealthy();
    }
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
    expect(await untilHealthy()).toBe(200);
  });
});
