/**
 * Two sample-app processes on one private Redis with the same SESSION_SECRETS: one session, no sticky
 * routing. Requests carry one cookie jar and alternate between the instances; one instance is
 * killed and started again on the same port, and the session carries on. The Redis suite runs once per
 * platform (HTTP_ADAPTER); the cluster suite runs one instance on each platform, so a session also moves
 * between an Express and a Fastify instance.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { RedisClusterProcess, RedisServerProcess } from '../support/redis/index.js';
import { TestDatabase } from '../support/postgres/index.js';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { Browserless } from './support/browserless.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess, type SampleAppEnv } from './support/sample-app.process.js';

const SESSION_COOKIE = '.Nest.Session';
const APP_NAME = 'multi';

function secrets(): string {
  return [randomBytes(32), randomBytes(32)].map((s) => s.toString('base64url')).join(',');
}

/** A {@link Browserless} that reads the sample app's counter. */
class CountingClient extends Browserless {
  async count(app: SampleAppProcess): Promise<number> {
    const response = await this.request(app, '/counter');
    expect(response.status).toBe(200);
    return (JSON.parse(response.body) as { count: number }).count;
  }
}

describe.each(SAMPLE_APP_PLATFORMS)('two sample-app instances on %s sharing one Redis', (platform) => {
  let redis: RedisServerProcess;
  let a: SampleAppProcess;
  let b: SampleAppProcess;

  beforeAll(async () => {
    const [server] = await Promise.all([RedisServerProcess.start(), ensureBuilt()]);
    redis = server;
    const env: SampleAppEnv = {
      REDIS_URL: redis.url,
      SESSION_SECRETS: secrets(),
      APP_NAME,
      HTTP_ADAPTER: platform,
    };
    [a, b] = await Promise.all([SampleAppProcess.start({ env }), SampleAppProcess.start({ env })]);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('one cookie, requests alternating between the instances: the counter goes 1, 2, 3, ...', async () => {
    const client = new CountingClient();
    const counts: number[] = [];
    for (let i = 0; i < 8; i++) counts.push(await client.count(i % 2 === 0 ? a : b));
    expect(counts).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // One session, stored in Redis under the app's prefix.
    const keys = await redis.admin().keys(`{${APP_NAME}_*}_Data`);
    expect(keys.length).toBeGreaterThanOrEqual(1);
  });

  test('the session survives killing and restarting one instance', async () => {
    const client = new CountingClient();
    expect([
      await client.count(a),
      await client.count(b),
      await client.count(a),
      await client.count(b),
    ]).toEqual([1, 2, 3, 4]);
    const cookie = client.jar.get(SESSION_COOKIE);

    const port = b.port;
    await b.kill();
    expect(b.isRunning()).toBe(false);
    // The other instance carries on alone.
    expect(await client.count(a)).toBe(5);
    await b.restart();
    expect(b.port).toBe(port);
    expect([await client.count(b), await client.count(a), await client.count(b)]).toEqual([6, 7, 8]);
    // Same session all along: its cookie was never replaced.
    expect(client.jar.get(SESSION_COOKIE)).toBe(cookie);
  });

  test('TempData written by one instance is read by the other, once', async () => {
    const client = new CountingClient();
    const created = await client.request(a, '/customers/create', { form: { name: 'Sarah Jane' } });
    expect(created.status).toBe(302);
    expect(created.location).toBe('/customers');
    const shown = await client.request(b, '/customers');
    expect(shown.body).toContain('Customer Sarah Jane added');
    const again = await client.request(a, '/customers');
    expect(again.body).not.toContain('Customer Sarah Jane added');
    expect(again.body).toContain('No message in TempData');
  });

  test('a login on one instance holds on the other; the old key is gone from both', async () => {
    const client = new CountingClient();
    expect(await client.count(a)).toBe(1);
    const before = client.jar.get(SESSION_COOKIE)!;
    const login = await client.request(b, '/login', { form: { user: 'Martha' } });
    expect(login.status).toBe(302);
    const after = client.jar.get(SESSION_COOKIE)!;
    expect(after).not.toBe(before);
    expect((await client.request(a, '/account')).body).toContain('Signed in as <strong>Martha</strong>');
    expect(await client.count(a)).toBe(2);

    const replay = new CountingClient();
    replay.jar.set(SESSION_COOKIE, before);
    for (const app of [a, b])
      expect((await replay.request(app, '/account')).body).toContain('You are not signed in.');
  });
});

describe('two sample-app instances on a Redis Cluster (REDIS_CLUSTER_NODES), one on express, one on fastify', () => {
  let cluster: RedisClusterProcess;
  let a: SampleAppProcess;
  let b: SampleAppProcess;

  beforeAll(async () => {
    const [started] = await Promise.all([RedisClusterProcess.start(), ensureBuilt()]);
    cluster = started;
    const env: SampleAppEnv = {
      REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(','),
      SESSION_SECRETS: secrets(),
      APP_NAME: 'clustered',
      TEMPDATA_PROVIDER: 'session',
    };
    [a, b] = await Promise.all([
      SampleAppProcess.start({ env: { ...env, HTTP_ADAPTER: 'express' } }),
      SampleAppProcess.start({ env: { ...env, HTTP_ADAPTER: 'fastify' } }),
    ]);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await cluster?.stop();
  });

  test('one session across both instances, TempData in the session', async () => {
    const client = new CountingClient();
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) counts.push(await client.count(i % 2 === 0 ? a : b));
    expect(counts).toEqual([1, 2, 3, 4, 5, 6]);

    const created = await client.request(b, '/customers/create', { form: { name: 'Donna Noble' } });
    expect(created.status).toBe(302);
    expect((await client.request(a, '/customers')).body).toContain('Customer Donna Noble added');
    expect((await client.request(b, '/customers')).body).toContain('No message in TempData');

    // The session is one hash in one slot, on one of the masters.
    const keys = (
      await Promise.all(cluster.processes.map((node) => node.admin().keys('{clustered_*}_Data')))
    ).flat();
    expect(keys).toHaveLength(1);
  });
});

describe('two sample-app instances sharing one PostgreSQL (DATABASE_URL)', () => {
  let db: TestDatabase;
  let a: SampleAppProcess;
  let b: SampleAppProcess;

  beforeAll(async () => {
    const [database] = await Promise.all([TestDatabase.create(), ensureBuilt()]);
    db = database;
    const env: SampleAppEnv = { DATABASE_URL: db.url(), SESSION_SECRETS: secrets() };
    // One after the other: the first creates the table.
    a = await SampleAppProcess.start({ env });
    b = await SampleAppProcess.start({ env });
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  test('one cookie, requests alternating between the instances: one session row, the counter goes 1, 2, 3, ...; it survives a killed instance', async () => {
    const client = new CountingClient();
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) counts.push(await client.count(i % 2 === 0 ? a : b));
    expect(counts).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await db.query('SELECT count(*)::int AS n FROM nest_sessions')).toEqual([{ n: 1 }]);
    await a.restart();
    expect(await client.count(a)).toBe(7);
    expect(await client.count(b)).toBe(8);
  });
});
