import pg from 'pg';
import request from 'supertest';
import { Redis } from 'ioredis';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisServerProcess } from '../support/redis/index.js';

/**
 * An app's own Redis client or pg pool outlives the modules built on it: a test suite creates and closes an
 * app on one client many times. Each module must take its listeners off when it closes, or the client
 * collects them (Node's MaxListenersExceededWarning at the 11th app).
 */
const SECRETS = ['Hq3vN8cT1xWm6zLr0pYe5sKd9bGf2aJu4iOt7yRz1P'];
const APPS = 12;

type Emitter = { listenerCount(event: string): number };
const counts = (emitter: Emitter, events: string[]) =>
  Object.fromEntries(events.map((event) => [event, emitter.listenerCount(event)]));

describe("an app's own client or pool, used by one app after another", () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
  beforeAll(() => process.on('warning', onWarning));
  afterAll(() => process.off('warning', onWarning));

  async function useInTurn(options: Parameters<typeof startSessionApp>[0]): Promise<void> {
    for (let i = 0; i < APPS; i++) {
      const { app, url } = await startSessionApp(options);
      try {
        const first = await request(url).get('/counter').expect(200);
        await request(url)
          .get('/counter')
          .set('Cookie', cookiePair(first, '.Nest.Session'))
          .expect(200, { count: 2 });
      } finally {
        await app.close();
      }
    }
  }

  it(`a Redis client (with the near cache): no listener left behind after ${APPS} apps`, async () => {
    const server = await RedisServerProcess.start();
    const client = new Redis({ port: server.port, lazyConnect: true });
    try {
      await client.connect();
      const events = ['error', 'ready', 'close', 'end'];
      const before = counts(client, events);
      await useInTurn({ secrets: SECRETS, redis: { client } });
      await useInTurn({ secrets: SECRETS, redis: { client, nearCache: true } });
      expect(counts(client, events)).toEqual(before);
      expect(client.status).toBe('ready'); // left open for its owner
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('a Redis client shared by 15 apps open at once: one listener per event, no MaxListenersExceededWarning', async () => {
    const server = await RedisServerProcess.start();
    const client = new Redis({ port: server.port, lazyConnect: true });
    const apps: Awaited<ReturnType<typeof startSessionApp>>[] = [];
    try {
      await client.connect();
      const events = ['error', 'ready'];
      const before = counts(client, events);
      for (let i = 0; i < 15; i++) apps.push(await startSessionApp({ secrets: SECRETS, redis: { client } }));
      // Each app still hears the client: a counter works on every one of them.
      for (const { url } of apps) await request(url).get('/counter').expect(200, { count: 1 });
      expect(counts(client, events)).toEqual({ error: before.error + 1, ready: before.ready + 1 });
      for (const { app } of apps.splice(0)) await app.close();
      expect(counts(client, events)).toEqual(before);
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    } finally {
      for (const { app } of apps) await app.close();
      client.disconnect();
      await server.stop();
    }
  });

  it(`a pg pool: no listeners piled up on the pool or its connections after ${APPS} apps`, async () => {
    const db = await TestDatabase.create();
    const pool = new pg.Pool({ connectionString: db.url(), max: 2 });
    try {
      const before = counts(pool, ['error', 'connect']);
      await useInTurn({ secrets: SECRETS, postgres: { pool } });
      // One listener of each kind for every module the pool ever served, so that an error on it after the apps
      // closed (an idle connection killed by a database restart) does not stop the process.
      expect(counts(pool, ['error', 'connect'])).toEqual({
        error: before.error + 1,
        connect: before.connect + 1,
      });
      expect(() =>
        pool.emit('error', new Error('terminating connection due to administrator command')),
      ).not.toThrow();
      // The connections the apps used carry at most the one listener the library shares among modules (the
      // pool itself listens only while a connection is idle).
      const clients = [await pool.connect(), await pool.connect()];
      const listeners = clients.map((client) => client.listenerCount('error'));
      for (const client of clients) client.release();
      expect(Math.max(...listeners)).toBeLessThanOrEqual(1);
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    } finally {
      await pool.end();
      await db.drop();
    }
  });

  it('a start refused after the store connected closes that connection (Nest runs no shutdown hook then)', async () => {
    const server = await RedisServerProcess.start();
    const connected = async () =>
      ((await server.admin().call('CLIENT', 'LIST')) as string)
        .split('\n')
        .filter((line) => line.includes('id=')).length;
    try {
      const before = await connected(); // the admin connection
      // The test app's controller injects SessionAccessor: asyncContext: false is refused at bootstrap.
      await expect(
        startSessionApp({
          secrets: SECRETS,
          asyncContext: false,
          redis: { host: server.host, port: server.port },
        }),
      ).rejects.toThrow(/asyncContext is false/);
      expect(await connected()).toBe(before);
    } finally {
      await server.stop();
    }
  });
});
