/**
 * The terminus health indicator on real stores: up while the store answers, down with the reason
 * (within the operation timeout, never hanging) when it is stopped, stalled or partly gone, and up
 * again once it answers, without a restart.
 */
import request from 'supertest';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  MemorySessionStore,
  SessionConfigurationError,
  SessionModule,
  type SessionChanges,
  type SessionCommitLimits,
  type SessionData,
  type SessionModuleOptions,
  type SessionStore,
} from 'nest-session-state';
import { SessionStoreHealthIndicator } from 'nest-session-state/terminus';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisClusterProcess, RedisServerProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';
import { HealthModule, type HealthBody } from './support/health-app.js';

const OPERATION_TIMEOUT = 250;
/** The operation timeout, the deadline check's resolution, and HTTP on a loaded 2-core machine. */
const ANSWER_BOUND = OPERATION_TIMEOUT + 600;

async function health(url: string): Promise<{ status: number; body: HealthBody; ms: number }> {
  const started = Date.now();
  const res = await request(url).get('/health');
  expect(res.headers['set-cookie']).toBeUndefined();
  return { status: res.status, body: res.body as HealthBody, ms: Date.now() - started };
}

/** Polls /health until it answers `status` (the client reconnects with a backoff of up to 1 s). */
async function eventually(url: string, status: number, withinMs = 10_000) {
  const until = Date.now() + withinMs;
  for (;;) {
    const answer = await health(url);
    if (answer.status === status || Date.now() > until) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A store of the app's own: no `storeType`, and the `ping()` given (none when left out). Its sessions live in a
 * memory store it wraps, which is not what the indicator sees.
 */
class OwnStore implements SessionStore {
  private readonly sessions = new MemorySessionStore();
  readonly writesDeltas = true;
  readonly throwOnError = true;
  readonly ping?: () => Promise<void>;

  constructor(ping?: () => Promise<void>) {
    if (ping) this.ping = ping;
  }

  load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    return this.sessions.load(sessionKey, idleTimeoutMs);
  }

  commit(sessionKey: string, changes: SessionChanges, idleTimeoutMs: number, limits?: SessionCommitLimits) {
    return this.sessions.commit(sessionKey, changes, idleTimeoutMs, limits);
  }

  refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    return this.sessions.refresh(sessionKey, idleTimeoutMs);
  }

  remove(sessionKey: string): Promise<void> {
    return this.sessions.remove(sessionKey);
  }
}

async function start(options: SessionModuleOptions): Promise<{ app: INestApplication; url: string }> {
  return startSessionApp(options, { imports: [HealthModule] });
}

describe('SessionStoreHealthIndicator (nest-session-state/terminus)', () => {
  it('memory store: up', async () => {
    const { app, url } = await start({});
    try {
      const answer = await health(url);
      expect(answer.status).toBe(200);
      expect(answer.body.details['session-store']).toMatchObject({ status: 'up', store: 'memory' });
    } finally {
      await app.close();
    }
  });

  describe('a custom store', () => {
    const PING_TIMEOUT = 200;
    /** The timeout, and a loaded 2-core machine. */
    const PING_ANSWER_BOUND = PING_TIMEOUT + 600;

    /** What `isHealthy('session-store', { timeout })` answers, and in how long; 'no answer' after 3 s. */
    async function probe(store: SessionStore, options: { timeout?: number } = {}) {
      const { app } = await start({ store });
      try {
        const indicator = app.get(SessionStoreHealthIndicator);
        const started = Date.now();
        const result = await Promise.race([
          indicator.isHealthy('session-store', options),
          new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 3_000).unref()),
        ]);
        return { result, ms: Date.now() - started };
      } finally {
        await app.close();
      }
    }

    it("without storeType or ping(): up, reported as store 'custom' with probe 'none'", async () => {
      const { app, url } = await start({ store: new OwnStore() });
      try {
        const answer = await health(url);
        expect(answer.status).toBe(200);
        expect(answer.body.details['session-store']).toEqual({
          status: 'up',
          store: 'custom',
          probe: 'none',
        });
      } finally {
        await app.close();
      }
    });

    it('a ping() that never settles: down within the timeout given to isHealthy(), naming it, never hanging', async () => {
      const { result, ms } = await probe(new OwnStore(() => new Promise<void>(() => undefined)), {
        timeout: PING_TIMEOUT,
      });
      expect(result).toEqual({
        'session-store': {
          status: 'down',
          store: 'custom',
          message: `The session store did not answer within ${PING_TIMEOUT} ms (timeout).`,
        },
      });
      expect(ms).toBeGreaterThanOrEqual(PING_TIMEOUT - 5);
      expect(ms).toBeLessThan(PING_ANSWER_BOUND);
    });

    it('timeout: Infinity leaves a store that answers up; a value no timer waits for is refused, naming the option', async () => {
      // Node fires a timer of Infinity, over 2^31-1 ms or under 1 ms after 1 ms: such a timeout reported down.
      const answersIn50ms = () => new OwnStore(() => new Promise<void>((resolve) => setTimeout(resolve, 50)));
      const { result } = await probe(answersIn50ms(), { timeout: Infinity });
      expect(result).toMatchObject({ 'session-store': { status: 'up', store: 'custom' } });
      for (const timeout of [2 ** 31, 0, -1, Number.NaN]) {
        await expect(probe(answersIn50ms(), { timeout })).rejects.toThrow(
          new RegExp(
            `^SessionStoreHealthIndicator\\.isHealthy\\(\\) option timeout must be a positive number of ` +
              `milliseconds, at most 2147483647 .*or Infinity .*\\(got ${String(timeout)}\\)\\.$`,
          ),
        );
      }
    });

    it('a ping() that rejects: down with its reason', async () => {
      const { result } = await probe(
        new OwnStore(() => Promise.reject(new Error('the audit database refused the connection'))),
      );
      expect(result).toEqual({
        'session-store': {
          status: 'down',
          store: 'custom',
          message: 'the audit database refused the connection',
        },
      });
    });
  });

  describe('Redis standalone', () => {
    let server: RedisServerProcess;
    beforeAll(async () => {
      server = await RedisServerProcess.start();
    });
    afterAll(() => server.stop());

    it('stopped: down within the operation timeout, naming why; restarted: up again', async () => {
      const { app, url } = await start({
        redis: { host: server.host, port: server.port, operationTimeoutInMilliseconds: OPERATION_TIMEOUT },
      });
      try {
        const up = await health(url);
        expect(up.status).toBe(200);
        expect(up.body.details['session-store']).toMatchObject({ status: 'up', store: 'redis' });
        const cookie = cookiePair(await request(url).get('/counter').expect(200), '.Nest.Session');

        await server.kill();
        // A request fails meanwhile: its operation error is not what the report names as the connection's.
        await request(url).get('/counter').set('Cookie', cookie).expect(503);
        const down = await eventually(url, 503, 3000);
        expect(down.status).toBe(503);
        expect(down.ms).toBeLessThan(ANSWER_BOUND);
        expect(down.body.details['session-store'].status).toBe('down');
        expect(down.body.details['session-store'].message).toMatch(
          new RegExp(`Redis at 127\\.0\\.0\\.1:${server.port} (is not connected|did not answer PING)`),
        );
        expect(down.body.details['session-store'].message).not.toMatch(/last error: Redis operation/);
        // Every probe while it is down answers as fast.
        const again = await health(url);
        expect(again.status).toBe(503);
        expect(again.ms).toBeLessThan(ANSWER_BOUND);

        await server.restart();
        const back = await eventually(url, 200);
        expect(back.status).toBe(200);
        expect(back.body.details['session-store']).toMatchObject({ status: 'up', store: 'redis' });
      } finally {
        await app.close();
      }
    });

    it('stalled connection: down within the operation timeout ("did not answer PING"), up once it answers', async () => {
      const proxy = await StallProxy.start(server);
      const { app, url } = await start({
        redis: { host: proxy.host, port: proxy.port, operationTimeoutInMilliseconds: OPERATION_TIMEOUT },
      });
      try {
        expect((await health(url)).status).toBe(200);
        const hold = proxy.holdWhen('ping', 1500); // ioredis sends commands in lower case
        const down = await health(url);
        expect(hold.engaged).toBe(true);
        expect(down.status).toBe(503);
        expect(down.ms).toBeLessThan(ANSWER_BOUND);
        expect(down.body.details['session-store'].message).toBe(
          `Redis at ${proxy.host}:${proxy.port} did not answer PING within ${OPERATION_TIMEOUT} ms (operationTimeoutInMilliseconds).`,
        );
        await hold.answered;
        expect((await eventually(url, 200)).status).toBe(200);
      } finally {
        await app.close();
        await proxy.stop();
      }
    });
  });

  describe('Redis Cluster (every master must answer)', () => {
    let cluster: RedisClusterProcess;
    beforeAll(async () => {
      cluster = await RedisClusterProcess.start();
    }, 30_000);
    afterAll(() => cluster.stop());

    it('up with all masters; down naming the master that is gone', async () => {
      const { app, url } = await start({
        redis: { clusterNodes: cluster.nodes, operationTimeoutInMilliseconds: OPERATION_TIMEOUT },
      });
      try {
        const up = await health(url);
        expect(up.status).toBe(200);
        expect(up.body.details['session-store']).toMatchObject({ status: 'up', store: 'redis_cluster' });

        const gone = cluster.nodes[1];
        await cluster.processes[1].kill();
        const down = await eventually(url, 503, 3000);
        expect(down.status).toBe(503);
        expect(down.ms).toBeLessThan(ANSWER_BOUND);
        expect(down.body.details['session-store'].message).toMatch(
          new RegExp(
            `Redis( Cluster master)? at 127\\.0\\.0\\.1:${gone.port} (is not connected|did not answer PING)`,
          ),
        );
      } finally {
        await app.close();
      }
    });
  });

  describe('PostgreSQL', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await TestDatabase.create();
    });
    afterAll(() => db.drop());

    it('stalled: down within the operation timeout; answering again: up; unreachable: down with the reason', async () => {
      const proxy = await StallProxy.start({ host: db.host, port: db.port });
      const { app, url } = await start({
        postgres: { connectionString: db.url(proxy), operationTimeoutInMilliseconds: OPERATION_TIMEOUT },
      });
      try {
        const up = await health(url);
        expect(up.status).toBe(200);
        expect(up.body.details['session-store']).toMatchObject({ status: 'up', store: 'postgresql' });

        const hold = proxy.holdWhen('nss_ping', 1500);
        const stalled = await health(url);
        expect(hold.engaged).toBe(true);
        expect(stalled.status).toBe(503);
        expect(stalled.ms).toBeLessThan(ANSWER_BOUND);
        expect(stalled.body.details['session-store'].message).toBe(
          `PostgreSQL operation ping timed out after operationTimeoutInMilliseconds=${OPERATION_TIMEOUT}`,
        );
        await hold.released;
        expect((await eventually(url, 200)).status).toBe(200);

        await proxy.stop(); // connections cut, nothing listens
        const down = await eventually(url, 503, 3000);
        expect(down.status).toBe(503);
        expect(down.ms).toBeLessThan(ANSWER_BOUND);
        expect(down.body.details['session-store'].message).toMatch(
          /^PostgreSQL operation ping failed: .*ECONNREFUSED|terminated|Connection/,
        );
      } finally {
        await app.close();
        await proxy.stop().catch(() => undefined);
      }
    });
  });

  describe('provided without what it needs: startup fails naming the module to import', () => {
    async function startupError(module: new () => object): Promise<Error> {
      const failed = await NestFactory.create(module, { logger: false, abortOnError: false }).then(
        async (app) => {
          await app.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      expect(failed).toBeInstanceOf(SessionConfigurationError);
      return failed as Error;
    }

    it('without SessionModule', async () => {
      @Module({ imports: [HealthModule] })
      class WithoutSessions {}
      expect((await startupError(WithoutSessions)).message).toMatch(
        /^SessionStoreHealthIndicator needs the session store: import SessionModule\.forRoot\(\)/,
      );
    });

    it('without TerminusModule', async () => {
      @Module({ providers: [SessionStoreHealthIndicator] })
      class IndicatorAlone {}
      @Module({ imports: [SessionModule.forRoot({}), IndicatorAlone] })
      class WithoutTerminus {}
      expect((await startupError(WithoutTerminus)).message).toMatch(
        /needs @nestjs\/terminus: import TerminusModule in the module that provides the indicator/,
      );
    });
  });
});
