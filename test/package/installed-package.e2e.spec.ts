/**
 * The package as users get it: packed with `npm pack` (its prepack builds), installed from the tarball
 * into fresh Nest apps outside the workspace with the README's install line, and the README's Quick
 * start compiled as written (strict, skipLibCheck false) and run, as ES modules and as CommonJS, on
 * each Nest major the peer range claims, on Express and on Fastify, and with Redis and PostgreSQL added. Jest's source mapping and the workspace's node_modules play
 * no part: this is what `npm install nest-session-state` gives.
 */
import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisClusterProcess, RedisServerProcess } from '../support/redis/index.js';
import {
  ConsumerApp,
  lowestAdmitted,
  packLibrary,
  readmeBlock,
  RunningApp,
  tarballFiles,
  type ModuleSystem,
} from './support/consumer-app.js';

jest.setTimeout(240_000);

const QUICK_START = readmeBlock('Quick start');
const SYSTEMS: ModuleSystem[] = ['esm', 'cjs'];
const NEST_MAJORS = [12, 11];
// ioredis 6 is what the workspace runs on; 5 is in the peer range, so a packed app on it keeps a counter too,
// on a standalone Redis (with and without the near cache) and on a Redis Cluster; and so does one on the lowest
// version the range admits (an app's older lock file), not only on the newest 5.x.
const IOREDIS_VERSIONS = ['6', '5', lowestAdmitted('ioredis')];
const secret = randomBytes(32).toString('base64url');
// The module enters requests through the adapters' setOnRequestHook, which @nestjs/platform-express and
// -fastify have since 11.1.4: the peer range's floor. 11.1.3 is the last release without it.
const LOWEST_ADAPTER = lowestAdmitted('@nestjs/platform-express');
const LAST_WITHOUT_HOOK = '11.1.3';

let packDir: string;
let tarball: string;

/** A consumer app installed and compiled, with the folders of its projects by name. */
interface PreparedApp {
  readonly app: ConsumerApp;
  readonly project: Readonly<Record<string, string>>;
}

/**
 * The consumer apps of the describes below, by describe, all set up at once as soon as the tarball exists:
 * their installs and tsc runs overlap (one after the other they left a core idle). Each describe awaits its own.
 */
const prepared = new Map<string, Promise<PreparedApp>>();

beforeAll(async () => {
  packDir = mkdtempSync(join(tmpdir(), 'nss-pack-'));
  tarball = await packLibrary(packDir);
  for (const nestMajor of NEST_MAJORS) prepared.set(`nest${nestMajor}`, prepareQuickStart(nestMajor));
  for (const ioredisVersion of IOREDIS_VERSIONS)
    prepared.set(`ioredis${ioredisVersion}`, prepareRedisApps(ioredisVersion));
  prepared.set('fastify-pg', prepareFastifyAndPostgres());
  prepared.set('nest11-floor', prepareNest11Adapters(LOWEST_ADAPTER, '@nestjs/common', '@nestjs/core'));
  prepared.set('nest11-old-adapter', prepareNest11Adapters(LAST_WITHOUT_HOOK, '--legacy-peer-deps'));
  // A failure is reported by the describe that awaits it, not as an unhandled rejection meanwhile.
  for (const setup of prepared.values()) setup.catch(() => undefined);
}, 240_000);

afterAll(async () => {
  const apps = await Promise.allSettled(prepared.values());
  for (const settled of apps) if (settled.status === 'fulfilled') settled.value.app.remove();
  rmSync(packDir, { recursive: true, force: true });
});

/**
 * A CommonJS app's Jest test as `nest new` makes one for Nest 11 (Jest in its default CommonJS mode, no
 * --experimental-vm-modules), of the Quick start's module: Jest's own module loader requires the package.
 */
const JEST_TEST = `const { NestFactory } = require('@nestjs/core');
const { AppModule } = require('./main.js');

test('the counter counts', async () => {
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const counts = [];
  let cookie = '';
  for (let i = 0; i < 3; i++) {
    const response = await fetch(url + '/counter', { headers: cookie ? { cookie } : {} });
    const set = response.headers.getSetCookie().map((c) => c.split(';')[0]);
    if (set.length > 0) cookie = set.join('; ');
    counts.push((await response.json()).count);
  }
  await app.close();
  expect(counts).toEqual([1, 2, 3]);
  expect(require.resolve('nest-session-state')).toMatch(/dist[\\\\/]cjs[\\\\/]index\\.js$/);
});
`;

/**
 * The README's Quick start as ESM and CommonJS, and with the redis and postgres options but without their peers;
 * on Nest 11, its module under a CommonJS Jest test as well.
 */
async function prepareQuickStart(nestMajor: number): Promise<PreparedApp> {
  const jest = nestMajor === 11 ? ['jest@^30.0.0'] : [];
  const app = await ConsumerApp.create(nestMajor, tarball, ...jest);
  const project: Record<string, string> = {};
  for (const system of SYSTEMS)
    project[system] = app.addProject(`quick-start-${system}`, system, QUICK_START);
  const withRedis = QUICK_START.replace(
    'SessionModule.forRoot()',
    "SessionModule.forRoot({ redis: { url: 'redis://127.0.0.1:1' } })",
  );
  expect(withRedis).not.toBe(QUICK_START);
  for (const system of SYSTEMS)
    project[`redis-${system}`] = app.addProject(`redis-without-ioredis-${system}`, system, withRedis);
  const withPostgres = QUICK_START.replace(
    'SessionModule.forRoot()',
    "SessionModule.forRoot({ postgres: { connectionString: 'postgres://127.0.0.1:1/app' } })",
  );
  for (const system of SYSTEMS)
    project[`postgres-${system}`] = app.addProject(`postgres-without-pg-${system}`, system, withPostgres);
  if (jest.length > 0) {
    const exported = QUICK_START.replace('void bootstrap();', 'export { AppModule, bootstrap };');
    expect(exported).not.toBe(QUICK_START);
    project.jest = app.addProject('jest-cjs', 'cjs', exported);
  }
  await app.compile();
  if (project.jest) writeFileSync(join(project.jest, 'counter.test.js'), JEST_TEST);
  return { app, project };
}

const redisApp = QUICK_START.replace(
  'SessionModule.forRoot()',
  'SessionModule.forRoot({ secrets: [process.env.SESSION_SECRET!], redis: { url: process.env.REDIS_URL } })',
);
const nearCacheApp = redisApp.replace(
  'redis: { url: process.env.REDIS_URL }',
  'redis: { url: process.env.REDIS_URL, nearCache: true }',
);
const clusterApp = redisApp.replace(
  'redis: { url: process.env.REDIS_URL }',
  "redis: { clusterNodes: process.env.CLUSTER_NODES!.split(',') }",
);
const redisEntry = [
  "import { Redis } from 'ioredis';",
  "import { RedisDistributedCache, RedisConnection, resolveRedisCacheOptions } from 'nest-session-state/redis';",
  "import { type RedisCacheOptions } from 'nest-session-state';",
  "const options: RedisCacheOptions = { client: new Redis({ lazyConnect: true }), applicationName: 'shop' };",
  'const connection = new RedisConnection(resolveRedisCacheOptions(options));',
  'export const cache: RedisDistributedCache = new RedisDistributedCache(connection);',
  '',
].join('\n');

/** Nest 12 with `ioredis@<major>`: the Redis, near-cache and cluster apps, and code using the redis entry. */
async function prepareRedisApps(ioredisVersion: string): Promise<PreparedApp> {
  const app = await ConsumerApp.create(12, tarball, `ioredis@${ioredisVersion}`);
  const project: Record<string, string> = {};
  for (const system of SYSTEMS) {
    project[system] = app.addProject(`redis-${system}`, system, redisApp);
    app.addProject(`redis-entry-${system}`, system, redisEntry);
  }
  expect(nearCacheApp).not.toBe(redisApp);
  project.nearCache = app.addProject('redis-near-cache', 'esm', nearCacheApp);
  expect(clusterApp).not.toBe(redisApp);
  project.cluster = app.addProject('redis-cluster', 'esm', clusterApp);
  // ioredis 6's own typings import the untyped redis-errors: with skipLibCheck false a user declares
  // it, as tsc's message suggests. Everything nest-session-state ships is still checked.
  await app.compile({ 'redis-errors.d.ts': "declare module 'redis-errors';\n" });
  return { app, project };
}

describe('the packed tarball', () => {
  let files: string[];
  beforeAll(async () => {
    files = await tarballFiles(tarball);
  });

  it('ships the README, LICENSE, CHANGELOG, SECURITY, docs and the build of every entry', () => {
    // SECURITY.md: the README, the CHANGELOG's upgrade notes and docs/configuration.md send users there for
    // secret rotation, and the manifest names no repository to find it in.
    for (const file of [
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'SECURITY.md',
      'package.json',
      'docs/API.md',
    ]) {
      expect(files).toContain(file);
    }
    for (const entry of ['index', 'redis', 'postgres', 'terminus']) {
      expect(files).toEqual(
        expect.arrayContaining([
          `dist/${entry}.js`,
          `dist/${entry}.d.ts`,
          `dist/cjs/${entry}.js`,
          `dist/cjs/${entry}.d.ts`,
        ]),
      );
    }
    expect(files).toContain('dist/cjs/package.json');
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.spec.js'))).toEqual([]);
  });

  describe('unpacked', () => {
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'nss-unpacked-'));
      const { execFileSync } = await import('node:child_process');
      execFileSync('tar', ['xzf', tarball, '-C', dir]);
      dir = join(dir, 'package');
    });
    afterAll(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

    it('has source maps that carry their sources (the .ts files are not shipped)', () => {
      const maps = files.filter((f) => f.endsWith('.js.map'));
      expect(maps.length).toBeGreaterThan(40);
      const withoutSources = maps.filter((file) => {
        const map = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { sourcesContent?: unknown[] };
        return !map.sourcesContent?.every((content) => typeof content === 'string' && content.length > 0);
      });
      expect(withoutSources).toEqual([]);
    });

    it('publishes no @internal member in its types', () => {
      const typings = files.filter((f) => f.endsWith('.d.ts'));
      const leaking = typings.filter((file) => /@internal\b/.test(readFileSync(join(dir, file), 'utf8')));
      expect(leaking).toEqual([]);
      const session = readFileSync(join(dir, 'dist/session/session.d.ts'), 'utf8');
      expect(session).not.toMatch(/\battach\(|\bchanges\b.*SessionChangeTracker/);
    });

    it('has the metadata a registry page needs, and ioredis and pg only as optional peers', () => {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(manifest).toMatchObject({
        name: 'nest-session-state',
        license: 'MIT',
        type: 'module',
        peerDependenciesMeta: { ioredis: { optional: true }, pg: { optional: true } },
      });
      expect((manifest.keywords as string[]).length).toBeGreaterThan(3);
      expect(manifest.dependencies ?? {}).not.toHaveProperty('ioredis');
      expect(manifest.dependencies ?? {}).not.toHaveProperty('pg');
      const exported = manifest.exports as Record<string, Record<string, Record<string, string>>>;
      // import: the ES build; require: the CommonJS build (Jest's CommonJS loader cannot require ES modules);
      // default, for any other resolver: the ES build. Each with its declarations.
      for (const [entry, file] of [
        ['.', 'index'],
        ['./redis', 'redis'],
        ['./postgres', 'postgres'],
        ['./terminus', 'terminus'],
      ]) {
        expect(exported[entry]).toEqual({
          import: { types: `./dist/${file}.d.ts`, default: `./dist/${file}.js` },
          require: { types: `./dist/cjs/${file}.d.ts`, default: `./dist/cjs/${file}.js` },
          default: { types: `./dist/${file}.d.ts`, default: `./dist/${file}.js` },
        });
      }
      expect(JSON.parse(readFileSync(join(dir, 'dist/cjs/package.json'), 'utf8'))).toEqual({
        type: 'commonjs',
      });
      expect(manifest.peerDependenciesMeta).toMatchObject({
        '@nestjs/terminus': { optional: true },
        '@opentelemetry/api': { optional: true },
      });
    });
  });
});

/** The Quick start on Fastify: the adapter, as Nest's docs create one; nothing else changes. */
const fastifyQuickStart = QUICK_START.replace(
  'const app = await NestFactory.create(AppModule);',
  'const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter());',
).replace(
  "import { NestFactory } from '@nestjs/core';",
  "import { NestFactory } from '@nestjs/core';\nimport { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';",
);
const postgresOptions =
  'SessionModule.forRoot({ secrets: [process.env.SESSION_SECRET!], postgres: { connectionString: process.env.DATABASE_URL! } })';

/**
 * Nest 12 with `@nestjs/platform-fastify` and `pg` added: the Quick start on Fastify (ESM and CommonJS), and
 * sessions in PostgreSQL on each platform.
 */
async function prepareFastifyAndPostgres(): Promise<PreparedApp> {
  const app = await ConsumerApp.create(12, tarball, '@nestjs/platform-fastify@^12.0.0', 'pg@^8.0.0');
  const project: Record<string, string> = {};
  expect(fastifyQuickStart).not.toContain('NestFactory.create(AppModule)');
  for (const system of SYSTEMS)
    project[`fastify-${system}`] = app.addProject(`fastify-${system}`, system, fastifyQuickStart);
  project['postgres-express'] = app.addProject(
    'postgres-express',
    'esm',
    QUICK_START.replace('SessionModule.forRoot()', postgresOptions),
  );
  project['postgres-fastify'] = app.addProject(
    'postgres-fastify',
    'cjs',
    fastifyQuickStart.replace('SessionModule.forRoot()', postgresOptions),
  );
  await app.compile();
  return { app, project };
}

/**
 * A Nest 11 app on `@nestjs/platform-express` and `-fastify` at `adapterVersion` (exactly), with `extra` at the lowest
 * version the package's peer ranges admit (`@nestjs/core`) or as npm flags: the Quick start on each platform, ESM.
 */
async function prepareNest11Adapters(adapterVersion: string, ...extra: string[]): Promise<PreparedApp> {
  const pinned = extra.map((name) => (name.startsWith('--') ? name : `${name}@${lowestAdmitted(name)}`));
  const app = await ConsumerApp.create(
    11,
    tarball,
    `@nestjs/platform-express@${adapterVersion}`,
    `@nestjs/platform-fastify@${adapterVersion}`,
    ...pinned,
  );
  const project = {
    express: app.addProject('express', 'esm', QUICK_START),
    fastify: app.addProject('fastify', 'esm', fastifyQuickStart),
  };
  await app.compile();
  return { app, project };
}

describe.each(NEST_MAJORS)('a fresh Nest %i app with `npm install nest-session-state`', (nestMajor) => {
  let app: ConsumerApp;
  let project: Readonly<Record<string, string>>;
  beforeAll(async () => {
    ({ app, project } = await prepared.get(`nest${nestMajor}`)!);
  });

  it('installs without ioredis and pg', () => {
    expect(existsSync(join(app.dir, 'node_modules/nest-session-state/dist/index.js'))).toBe(true);
    expect(existsSync(join(app.dir, 'node_modules/ioredis'))).toBe(false);
    expect(existsSync(join(app.dir, 'node_modules/pg'))).toBe(false);
    // The quick start below runs without them: metrics are off, the health indicator is not imported.
    expect(existsSync(join(app.dir, 'node_modules/@opentelemetry/api'))).toBe(false);
    expect(existsSync(join(app.dir, 'node_modules/@nestjs/terminus'))).toBe(false);
    const core = JSON.parse(readFileSync(join(app.dir, 'node_modules/@nestjs/core/package.json'), 'utf8'));
    expect((core as { version: string }).version.split('.')[0]).toBe(String(nestMajor));
  });

  it.each(SYSTEMS)('runs the README Quick start as written (%s): the counter counts', async (system) => {
    const running = await RunningApp.start(project[system]);
    try {
      expect(await running.getWithCookies('/counter', 3)).toEqual([{ count: 1 }, { count: 2 }, { count: 3 }]);
    } finally {
      await running.stop();
    }
  });

  it('a CommonJS app requires the CommonJS build (dist/cjs), an ES module app imports the ES build', async () => {
    const resolved = await app.node(['-p', "require.resolve('nest-session-state')"], project.cjs);
    expect(resolved.trim()).toBe(join(app.dir, 'node_modules/nest-session-state/dist/cjs/index.js'));
    const imported = await app.node(
      ['--input-type=module', '-e', "console.log(import.meta.resolve('nest-session-state'))"],
      project.esm,
    );
    expect(imported.trim()).toMatch(/\/node_modules\/nest-session-state\/dist\/index\.js$/);
  });

  it('refuses at startup a SessionModule from each of its two builds in one app (one imported, one required)', async () => {
    // Each build's forRoot() would otherwise pass its own check: both entered every request, and a sign-in
    // written through one build's store was lost to the other's (a probe: 200, then signed out).
    const script = [
      "import 'reflect-metadata';",
      "import { createRequire } from 'node:module';",
      "import { Module } from '@nestjs/common';",
      "import { NestFactory } from '@nestjs/core';",
      "import { SessionModule } from 'nest-session-state';",
      "const required = createRequire(import.meta.url)('nest-session-state');",
      'class Feature {}',
      'Module({ imports: [required.SessionModule.forRoot()] })(Feature);',
      'class AppModule {}',
      'Module({ imports: [SessionModule.forRoot(), Feature] })(AppModule);',
      'try {',
      '  const app = await NestFactory.create(AppModule, { logger: false });',
      "  await app.init(); console.log('STARTED'); await app.close();",
      "} catch (error) { console.log('REFUSED ' + error.message); }",
    ].join('\n');
    const output = await app.node(['--input-type=module', '-e', script], project.esm);
    expect(output).toMatch(/^REFUSED SessionModule is imported more than once in this application/);
    expect(output).toMatch(
      /Two copies of the package count too: its ES module build \(import\) and its CommonJS build/,
    );
  });

  if (nestMajor === 11)
    it("runs a test of the app in Jest's default CommonJS mode (a Nest 11 app's tests: Jest's own loader requires the package)", async () => {
      const output = await app.node([join(app.dir, 'node_modules/jest/bin/jest.js'), '--ci'], project.jest);
      expect(output).toMatch(/Tests:\s+1 passed, 1 total/);
    });

  it.each(
    SYSTEMS.flatMap((system) => [
      ['redis', 'ioredis', system],
      ['postgres', 'pg', system],
    ]),
  )('refuses the %s option at startup, saying to install %s (%s)', async (option, peer, system) => {
    const { code, output } = await RunningApp.failToStart(project[`${option}-${system}`]);
    expect(code).not.toBe(0);
    expect(output).toContain(`SessionModule option ${option} needs the ${peer} package`);
    expect(output).toContain(`npm install ${peer}`);
    // Neither the ES loader's nor require()'s raw error.
    expect(output).not.toContain('MODULE_NOT_FOUND');
  });
});

describe.each(IOREDIS_VERSIONS)('a Nest 12 app that adds `npm install ioredis@%s`', (ioredisVersion) => {
  let app: ConsumerApp;
  let project: Readonly<Record<string, string>>;
  let redis: RedisServerProcess;
  let cluster: RedisClusterProcess;

  beforeAll(async () => {
    [{ app, project }, redis, cluster] = await Promise.all([
      prepared.get(`ioredis${ioredisVersion}`)!,
      RedisServerProcess.start(),
      RedisClusterProcess.start({ masters: 3 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([redis?.stop(), cluster?.stop()]);
  });

  it.each(SYSTEMS)('keeps the counter in Redis (%s)', async (system) => {
    const running = await RunningApp.start(project[system], { SESSION_SECRET: secret, REDIS_URL: redis.url });
    try {
      expect(await running.getWithCookies('/counter', 2)).toEqual([{ count: 1 }, { count: 2 }]);
    } finally {
      await running.stop();
    }
    expect((await redis.admin().keys('{nest_*}_Data')).length).toBeGreaterThan(0);
    const installed = JSON.parse(readFileSync(join(app.dir, 'node_modules/ioredis/package.json'), 'utf8'));
    // `5` is any 5.x; `5.2.5` that version exactly.
    const { version } = installed as { version: string };
    expect(`${version}.`.slice(0, ioredisVersion.length + 1)).toBe(`${ioredisVersion}.`);
  });

  it('keeps the counter in Redis with the near cache (client-side tracking and its invalidation connection)', async () => {
    const running = await RunningApp.start(project.nearCache, {
      SESSION_SECRET: secret,
      REDIS_URL: redis.url,
    });
    try {
      expect(await running.getWithCookies('/counter', 3)).toEqual([{ count: 1 }, { count: 2 }, { count: 3 }]);
    } finally {
      await running.stop();
    }
  });

  it('keeps the counter in a Redis Cluster of 3 masters (clusterNodes)', async () => {
    const running = await RunningApp.start(project.cluster, {
      SESSION_SECRET: secret,
      CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
    });
    try {
      expect(await running.getWithCookies('/counter', 3)).toEqual([{ count: 1 }, { count: 2 }, { count: 3 }]);
    } finally {
      await running.stop();
    }
    const keys = await Promise.all(cluster.processes.map((node) => node.admin().keys('{nest_*}_Data')));
    expect(keys.flat()).toHaveLength(1);
  });

  it('type-checks code that uses the nest-session-state/redis entry, as ESM and CommonJS', () => {
    // compile() in beforeAll would have thrown; the output files prove both projects were compiled.
    for (const system of SYSTEMS) {
      expect(existsSync(join(app.dir, `redis-entry-${system}/main.js`))).toBe(true);
    }
  });
});

describe('a Nest 12 app on Fastify, and one that adds `npm install pg`', () => {
  let project: Readonly<Record<string, string>>;
  let db: TestDatabase;

  beforeAll(async () => {
    [{ project }, db] = await Promise.all([prepared.get('fastify-pg')!, TestDatabase.create()]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it.each(SYSTEMS)(
    'runs the README Quick start on FastifyAdapter (%s): the counter counts',
    async (system) => {
      const running = await RunningApp.start(project[`fastify-${system}`]);
      try {
        expect(await running.getWithCookies('/counter', 3)).toEqual([
          { count: 1 },
          { count: 2 },
          { count: 3 },
        ]);
      } finally {
        await running.stop();
      }
    },
  );

  it.each(['express', 'fastify'])(
    'keeps the counter in PostgreSQL (%s): one row for the one session',
    async (platform) => {
      const sessions = async () =>
        (
          await db
            .query<{ n: number }>('SELECT count(*)::int AS n FROM nest_sessions')
            .catch(() => [{ n: 0 }])
        )[0].n;
      const before = await sessions();
      const running = await RunningApp.start(project[`postgres-${platform}`], {
        SESSION_SECRET: secret,
        DATABASE_URL: db.url(),
      });
      try {
        expect(await running.getWithCookies('/counter', 2)).toEqual([{ count: 1 }, { count: 2 }]);
      } finally {
        await running.stop();
      }
      expect(await sessions()).toBe(before + 1);
    },
  );
});

// Last in the file: its apps, set up with the others at the start, are ready by the time it runs.
describe('a Nest 11 app on the Express and Fastify adapters the peer range admits, and on older ones', () => {
  beforeAll(() => Promise.all([prepared.get('nest11-floor'), prepared.get('nest11-old-adapter')]), 480_000);

  it.each(['express', 'fastify'])(
    'runs the Quick start on @nestjs/platform-%s at the range floor, with @nestjs/core at its own',
    async (platform) => {
      const { app, project } = await prepared.get('nest11-floor')!;
      const installed = (name: string) =>
        (
          JSON.parse(readFileSync(join(app.dir, `node_modules/${name}/package.json`), 'utf8')) as {
            version: string;
          }
        ).version;
      expect(installed(`@nestjs/platform-${platform}`)).toBe(LOWEST_ADAPTER);
      expect(installed('@nestjs/core')).toBe(lowestAdmitted('@nestjs/core'));
      const running = await RunningApp.start(project[platform]);
      try {
        expect(await running.getWithCookies('/counter', 2)).toEqual([{ count: 1 }, { count: 2 }]);
      } finally {
        await running.stop();
      }
    },
  );

  it(`npm refuses to install the package beside @nestjs/platform-express ${LAST_WITHOUT_HOOK}, naming the range`, async () => {
    // Before the adapters were a peer, this installed and every start failed (below).
    await expect(
      ConsumerApp.create(11, tarball, `@nestjs/platform-express@${LAST_WITHOUT_HOOK}`),
    ).rejects.toThrow(/ERESOLVE[\s\S]*@nestjs\/platform-express@"\^11\.1\.4/);
  });

  it.each(['express', 'fastify'])(
    `installed anyway (--legacy-peer-deps), @nestjs/platform-%s ${LAST_WITHOUT_HOOK} beside the newest @nestjs/core 11 fails at startup saying what to upgrade`,
    async (platform) => {
      const { app, project } = await prepared.get('nest11-old-adapter')!;
      const core = JSON.parse(readFileSync(join(app.dir, 'node_modules/@nestjs/core/package.json'), 'utf8'));
      // This core gives every adapter a setOnRequestHook that does nothing: before, the app started, and every
      // accessor in a Nest middleware threw SessionNotConfiguredError (500s; the README's request items example).
      expect((core as { version: string }).version).not.toBe(LAST_WITHOUT_HOOK);
      const { code, output } = await RunningApp.failToStart(project[platform]);
      expect(output).not.toContain('successfully started');
      expect(code).not.toBe(0);
      // Beside an older core, not "needs an HTTP application on Express ..., but this application runs on the HTTP
      // platform 'express'".
      expect(output).not.toContain(`runs on the HTTP platform '${platform}'`);
      expect(output).toContain(`SessionModule needs @nestjs/platform-${platform} 11.1.4 or later`);
      expect(output).toContain(`npm install @nestjs/platform-${platform}@^11.1.4`);
    },
  );
});
