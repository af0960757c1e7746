/**
 * The sample app's environment variables (DESIGN.md, "Sample app"): each is turned into
 * SessionModule options, and each bad value stops the app at startup with a message naming it.
 */
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, test } from '@jest/globals';
import {
  KeyRingConfigurationError,
  PostgresConfigurationError,
  RedisConfigurationError,
} from 'nest-session-state';
import {
  explainStartupError,
  loadSampleConfig,
  SampleConfigError,
} from '../../sample-app/src/config/sample-app.config.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { BUILD_TIMEOUT_MS, ensureBuilt, REPO_ROOT, SAMPLE_APP_MAIN } from './support/build.js';

const SECRET_A = 'n3Q8v1X0kq7Zr5LwYb2Hc9Td4Jf6Mg0Ps8Ua1Ve3Wx5';
const SECRET_B = 'Gh7Kp2Lm9Nq4Rs6Tv8Wx1Yz3Ab5Cd7Ef9Gh2Jk4Lm6Np';

describe('loadSampleConfig', () => {
  test('no variables: port 3000, memory store, cookie TempData, 20 minutes idle, random key ring', () => {
    const config = loadSampleConfig({});
    expect(config.port).toBe(3000);
    expect(config.platform).toBe('express');
    expect(config.session).toEqual({ session: { idleTimeout: 1_200_000 }, tempData: { provider: 'cookie' } });
    expect(config.summary).toEqual({
      store: 'memory',
      tempDataProvider: 'cookie',
      idleTimeoutSeconds: 1200,
      sharedSecrets: false,
    });
    expect(config.warnings).toEqual([]);
  });

  test('every variable maps onto SessionModuleOptions', () => {
    const config = loadSampleConfig({
      PORT: '8080',
      REDIS_URL: 'redis://:pw@127.0.0.1:6380/2',
      SESSION_SECRETS: ` ${SECRET_A} , ${SECRET_B} `,
      TEMPDATA_PROVIDER: 'session',
      APP_NAME: 'shop',
      SESSION_IDLE_TIMEOUT: '90',
    });
    expect(config.port).toBe(8080);
    expect(config.session).toEqual({
      session: { idleTimeout: 90_000 },
      tempData: { provider: 'session' },
      secrets: [SECRET_A, SECRET_B],
      redis: { url: 'redis://:pw@127.0.0.1:6380/2', applicationName: 'shop' },
    });
    expect(config.summary.store).toBe('redis');
    expect(config.summary.sharedSecrets).toBe(true);
  });

  test('DATABASE_URL puts sessions in PostgreSQL', () => {
    const config = loadSampleConfig({ DATABASE_URL: ' postgres://app:pw@db.internal:5433/shop ' });
    expect(config.session.postgres).toEqual({ connectionString: 'postgres://app:pw@db.internal:5433/shop' });
    expect(config.session.redis).toBeUndefined();
    expect(config.summary.store).toBe('postgres');
  });

  test.each([
    [{ REDIS_URL: 'redis://127.0.0.1:6379' }, 'REDIS_URL'],
    [{ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, 'REDIS_CLUSTER_NODES'],
  ])('DATABASE_URL with %j: a clear error naming both', (redis, other) => {
    expect(() => loadSampleConfig({ DATABASE_URL: 'postgres://127.0.0.1/app', ...redis })).toThrow(
      new SampleConfigError(
        'DATABASE_URL',
        `cannot be combined with ${other}: sessions live in one store. Set DATABASE_URL for PostgreSQL or ` +
          'REDIS_URL / REDIS_CLUSTER_NODES for Redis, not both.',
      ),
    );
  });

  test('DATABASE_URL that is not a postgres:// URL', () => {
    expect(() => loadSampleConfig({ DATABASE_URL: 'mysql://db/app' })).toThrow(
      'DATABASE_URL: must start with postgres:// or postgresql:// (got mysql://).',
    );
    expect(() => loadSampleConfig({ DATABASE_URL: 'db:5432' })).toThrow(/^DATABASE_URL: /);
  });

  test('HTTP_ADAPTER picks the platform: express (default) or fastify, any case, spaces trimmed', () => {
    expect(loadSampleConfig({ HTTP_ADAPTER: 'fastify' }).platform).toBe('fastify');
    expect(loadSampleConfig({ HTTP_ADAPTER: ' Fastify ' }).platform).toBe('fastify');
    expect(loadSampleConfig({ HTTP_ADAPTER: 'express' }).platform).toBe('express');
    expect(loadSampleConfig({ HTTP_ADAPTER: '' }).platform).toBe('express');
  });

  test('REDIS_CLUSTER_NODES is a comma-separated host:port list', () => {
    const config = loadSampleConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001,[::1]:7002' });
    expect(config.session.redis).toEqual({
      clusterNodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(config.summary.store).toBe('redis cluster');
  });

  test('REDIS_NEAR_CACHE=on turns the near cache on (with REDIS_URL)', () => {
    const config = loadSampleConfig({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_NEAR_CACHE: 'on' });
    expect(config.session.redis).toEqual({ url: 'redis://127.0.0.1:6380', nearCache: true });
    expect(config.summary.store).toBe('redis + near cache');
    expect(loadSampleConfig({ REDIS_URL: 'redis://h', REDIS_NEAR_CACHE: 'off' }).session.redis).toEqual({
      url: 'redis://h',
    });
    expect(loadSampleConfig({ REDIS_NEAR_CACHE: 'on' }).warnings).toEqual([
      'REDIS_NEAR_CACHE has no effect without REDIS_URL.',
    ]);
  });

  test('APP_NAME without Redis is reported as having no effect', () => {
    expect(loadSampleConfig({ APP_NAME: 'shop' }).warnings).toEqual([
      'APP_NAME has no effect without REDIS_URL or REDIS_CLUSTER_NODES.',
    ]);
  });

  test.each([
    ['PORT', { PORT: 'http' }],
    ['PORT', { PORT: '70000' }],
    ['REDIS_URL', { REDIS_URL: 'localhost:6379' }],
    ['REDIS_URL', { REDIS_URL: 'http://localhost:6379' }],
    ['REDIS_URL', { REDIS_URL: 'redis://localhost:6379/x' }],
    ['REDIS_URL', { REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:2' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'localhost' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:port' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: ',' }],
    ['SESSION_SECRETS', { SESSION_SECRETS: ' , ' }],
    ['TEMPDATA_PROVIDER', { TEMPDATA_PROVIDER: 'redis' }],
    ['APP_NAME', { APP_NAME: 'my {app}', REDIS_URL: 'redis://localhost' }],
    ['REDIS_NEAR_CACHE', { REDIS_URL: 'redis://localhost', REDIS_NEAR_CACHE: 'yes please' }],
    ['REDIS_NEAR_CACHE', { REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_NEAR_CACHE: 'on' }],
    ['HTTP_ADAPTER', { HTTP_ADAPTER: 'koa' }],
    ['HTTP_ADAPTER', { HTTP_ADAPTER: 'platform-fastify' }],
    ['SESSION_IDLE_TIMEOUT', { SESSION_IDLE_TIMEOUT: '20m' }],
    ['SESSION_IDLE_TIMEOUT', { SESSION_IDLE_TIMEOUT: '0' }],
    ['SESSION_IDLE_TIMEOUT', { SESSION_IDLE_TIMEOUT: '-5' }],
  ])('a bad %s fails with a message naming it (%j)', (variable, env) => {
    let caught: unknown;
    try {
      loadSampleConfig(env);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SampleConfigError);
    expect((caught as SampleConfigError).variable).toBe(variable);
    expect((caught as Error).message.startsWith(`${variable}: `)).toBe(true);
  });

  test("the library's startup errors are explained with the variable behind them", () => {
    const weak = explainStartupError(new KeyRingConfigurationError('secrets[0] is too weak'), {});
    expect(weak.message).toBe('SESSION_SECRETS: secrets[0] is too weak');
    const down = explainStartupError(new RedisConfigurationError('Nothing accepts connections'), {
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(down.message).toBe('REDIS_URL: Nothing accepts connections');
    const cluster = explainStartupError(new RedisConfigurationError('no node answered'), {
      REDIS_CLUSTER_NODES: '127.0.0.1:1',
    });
    expect(cluster.message).toBe('REDIS_CLUSTER_NODES: no node answered');
    const near = explainStartupError(
      new RedisConfigurationError('Redis option nearCache could not be set up'),
      {
        REDIS_URL: 'redis://127.0.0.1:6379',
        REDIS_NEAR_CACHE: 'on',
      },
    );
    expect(near.message).toBe('REDIS_NEAR_CACHE: Redis option nearCache could not be set up');
    const postgres = explainStartupError(new PostgresConfigurationError('no such database'), {
      DATABASE_URL: 'postgres://127.0.0.1/missing',
    });
    expect(postgres.message).toBe('DATABASE_URL: no such database');
    const other = new Error('something else');
    expect(explainStartupError(other, {})).toBe(other);
  });
});

describe('the sample app process at startup', () => {
  beforeAll(() => ensureBuilt(), BUILD_TIMEOUT_MS);

  /** Runs the built app with `env` until it exits (it should, at once). */
  function runApp(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
      const childEnv: NodeJS.ProcessEnv = { ...process.env };
      for (const name of [
        'NODE_OPTIONS',
        'REDIS_URL',
        'REDIS_CLUSTER_NODES',
        'SESSION_SECRETS',
        'TEMPDATA_PROVIDER',
        'REDIS_NEAR_CACHE',
        'DATABASE_URL',
        'HTTP_ADAPTER',
      ]) {
        delete childEnv[name];
      }
      Object.assign(childEnv, { NO_COLOR: '1' }, env);
      const child = spawn(process.execPath, [SAMPLE_APP_MAIN], { cwd: REPO_ROOT, env: childEnv });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  }

  test.each([
    ['SESSION_IDLE_TIMEOUT', { SESSION_IDLE_TIMEOUT: 'soon' }],
    ['TEMPDATA_PROVIDER', { TEMPDATA_PROVIDER: 'database' }],
    ['SESSION_SECRETS', { SESSION_SECRETS: 'too-short' }],
    ['HTTP_ADAPTER', { HTTP_ADAPTER: 'koa' }],
    ['REDIS_URL', { REDIS_URL: 'redis://127.0.0.1:1' }],
    ['DATABASE_URL', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/app' }],
  ])(
    'a bad %s stops it with exit code 1 and a message naming the variable',
    async (variable, env) => {
      const { code, output } = await runApp({ PORT: '0', ...env });
      expect(code).toBe(1);
      expect(output).toContain(`Sample app failed to start: ${variable}: `);
    },
    30_000,
  );

  test('REDIS_NEAR_CACHE=on against a Redis whose user may not track stops it naming REDIS_NEAR_CACHE', async () => {
    const redis = await RedisServerProcess.start();
    try {
      await redis
        .admin()
        .call('ACL', 'SETUSER', 'plain', 'on', '>pw', '~*', '+@all', '-client', '-subscribe');
      const { code, output } = await runApp({
        PORT: '0',
        REDIS_URL: `redis://plain:pw@${redis.host}:${redis.port}`,
        REDIS_NEAR_CACHE: 'on',
      });
      expect(code).toBe(1);
      expect(output).toContain(
        'Sample app failed to start: REDIS_NEAR_CACHE: Redis option nearCache could not be set up',
      );
    } finally {
      await redis.stop();
    }
  }, 30_000);
});
