/**
 * Unknown option names and store options that exclude each other fail at startup of a real Nest app,
 * before anything connects, with a message that names the full path and the fix; every documented
 * option, set all at once, still starts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { Redis } from 'ioredis';
import { createClient as createNodeRedisClient } from 'redis';
import request from 'supertest';
import {
  ManualClock,
  MemoryDistributedCache,
  MemorySessionStore,
  RedisConfigurationError,
  SessionConfigurationError,
  SessionModule,
  type SessionModuleOptions,
  type SessionModuleOptionsFactory,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { findSetCookie } from '../support/cookie-jar.js';
import { freePort, RedisClusterProcess, RedisServerProcess } from '../support/redis/index.js';

const SECRETS = ['Zp0eVq3wT9sXr6Yb1nKc4dLm7fHg2aJu8iOt5yWz3Q'];

/** Options as an app builds them from configuration: the compiler cannot see their names. */
const fromConfig = (options: object): SessionModuleOptions => options;

/**
 * A TCP port that accepts connections and never answers, counting them: a module that tried to reach
 * Redis here would hang until its connection timeout instead of failing at once.
 */
class SilentRedis {
  connections = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('error', () => undefined); // a client that gives up may reset the connection
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<SilentRedis> {
    const port = await freePort();
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return new SilentRedis(server, port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Starts an app that must fail; returns its error and how long startup took. */
async function startupError(
  options: SessionModuleOptions,
  module?: DynamicModule,
): Promise<{ error: Error; ms: number }> {
  const started = performance.now();
  try {
    const { app } = await startSessionApp(options, module ? { module } : {});
    await app.close();
  } catch (error) {
    return { error: error as Error, ms: performance.now() - started };
  }
  throw new Error(`startup succeeded with ${JSON.stringify(options)}`);
}

/**
 * Redis options pointing at a listener that never answers (they would hang startup for 10 s if the
 * module connected), and a check after each test that nothing connected to it.
 */
function refusedBeforeConnecting(): {
  readonly redis: { url: string; connectionTimeoutInMilliseconds: number };
  readonly silent: { readonly port: number; readonly url: string };
} {
  let silent: SilentRedis;
  const options = {
    redis: { url: '', connectionTimeoutInMilliseconds: 10_000 },
    silent: {
      get port() {
        return silent.port;
      },
      get url() {
        return silent.url;
      },
    },
  };
  beforeAll(async () => {
    silent = await SilentRedis.start();
    options.redis.url = silent.url;
  });
  afterAll(() => silent.stop());
  afterEach(() => {
    expect(silent.connections).toBe(0);
  });
  return options;
}

describe('unknown option names fail at startup, before connecting', () => {
  const { redis, silent } = refusedBeforeConnecting();

  /** Asserts the startup error, that it came fast, and (afterEach) that nothing connected. */
  async function expectRefused(
    options: object,
    type: typeof SessionConfigurationError | typeof RedisConfigurationError,
    message: string,
  ): Promise<void> {
    const { error, ms } = await startupError(fromConfig(options));
    expect(error).toBeInstanceOf(type);
    expect(error.message).toBe(message);
    expect(ms).toBeLessThan(5_000); // well under the 10 s connection timeout, with room for a loaded machine
  }

  it('secret (the issue: a typo of secrets)', async () => {
    await expectRefused(
      { secret: SECRETS, redis },
      SessionConfigurationError,
      'SessionModule option secret is unknown: did you mean secrets?',
    );
  });

  it('session.idleTimeOut', async () => {
    await expectRefused(
      { session: { idleTimeOut: 60_000 }, redis },
      SessionConfigurationError,
      'SessionModule option session.idleTimeOut is unknown: did you mean session.idleTimeout?',
    );
  });

  it('session.cookie.sameSIte and tempData.cookie.nmae', async () => {
    await expectRefused(
      { session: { cookie: { sameSIte: 'strict' } }, redis },
      SessionConfigurationError,
      'SessionModule option session.cookie.sameSIte is unknown: did you mean session.cookie.sameSite?',
    );
    await expectRefused(
      { tempData: { cookie: { nmae: 'flash' } } },
      SessionConfigurationError,
      'SessionModule option tempData.cookie.nmae is unknown: did you mean tempData.cookie.name?',
    );
  });

  it('redis.hots, as RedisConfigurationError', async () => {
    await expectRefused(
      { redis: { hots: '127.0.0.1', port: silent.port, connectionTimeoutInMilliseconds: 10_000 } },
      RedisConfigurationError,
      'Redis option redis.hots is unknown: did you mean redis.host?',
    );
  });

  it('every other level: session.lock, tempData, memory, metrics, redis.nearCache, redis.clusterNodes[i]', async () => {
    await expectRefused(
      { session: { lock: { tll: 1000 } } },
      SessionConfigurationError,
      'SessionModule option session.lock.tll is unknown: did you mean session.lock.ttl?',
    );
    await expectRefused(
      { tempData: { maxCookieByte: 1000 } },
      SessionConfigurationError,
      'SessionModule option tempData.maxCookieByte is unknown: did you mean tempData.maxCookieBytes?',
    );
    await expectRefused(
      { memory: { sizelimit: 1000 } },
      SessionConfigurationError,
      'SessionModule option memory.sizelimit is unknown: did you mean memory.sizeLimit?',
    );
    await expectRefused(
      {
        metrics: {
          meterprovider: { getMeter: () => undefined },
        } as unknown as SessionModuleOptions['metrics'],
      },
      SessionConfigurationError,
      'SessionModule option metrics.meterprovider is unknown: did you mean metrics.meterProvider?',
    );
    await expectRefused(
      { redis: { ...redis, nearCache: { maxAge: 1000 } } },
      RedisConfigurationError,
      'Redis option redis.nearCache.maxAge is unknown: did you mean redis.nearCache.maxAgeInMilliseconds?',
    );
    await expectRefused(
      { redis: { clusterNodes: [{ host: '127.0.0.1', prot: silent.port }] } },
      RedisConfigurationError,
      'Redis option redis.clusterNodes[0].prot is unknown: did you mean redis.clusterNodes[0].port?',
    );
  });

  it("maps ioredis's names to the seed's and points a misplaced name to its level", async () => {
    await expectRefused(
      { redis: { ...redis, password: 'x' } },
      RedisConfigurationError,
      'Redis option redis.password is unknown: did you mean redis.accessKey?',
    );
    // 0.1.0 ignored these: following the suggestion would move every session, so the message says so.
    await expectRefused(
      { redis: { ...redis, keyPrefix: 'shop' } },
      RedisConfigurationError,
      'Redis option redis.keyPrefix is unknown: did you mean redis.applicationName? nest-session-state 0.1.0 ' +
        'ignored it: an app upgraded from 0.1.0 has its sessions where applicationName and databaseId (or a url ' +
        'path, or their defaults) put them, and changing those starts every session anew; to keep them, remove the ' +
        'option. (Sessions of connect-redis are not read in any case: see docs/migrating.md.)',
    );
    await expectRefused(
      { redis: { ...redis, DB: 2 } }, // the suggestion ignores case: so does the note
      RedisConfigurationError,
      'Redis option redis.DB is unknown: did you mean redis.databaseId? nest-session-state 0.1.0 ignored it: an ' +
        'app upgraded from 0.1.0 has its sessions where applicationName and databaseId (or a url path, or their ' +
        'defaults) put them, and changing those starts every session anew; to keep them, remove the option. ' +
        '(Sessions of connect-redis are not read in any case: see docs/migrating.md.)',
    );
    await expectRefused(
      { idleTimeout: 60_000, redis },
      SessionConfigurationError,
      'SessionModule option idleTimeout is unknown: did you mean session.idleTimeout?',
    );
    await expectRefused(
      { url: silent.url },
      SessionConfigurationError,
      'SessionModule option url is unknown: did you mean redis.url?',
    );
  });

  it("express-session's and connect-redis's options without a counterpart say what to do instead, not a near name", async () => {
    await expectRefused(
      { secrets: SECRETS, resave: false, session: { saveUninitialized: false, rolling: true }, redis },
      SessionConfigurationError,
      [
        "SessionModule option resave is unknown: express-session's resave is not needed: a commit writes only " +
          'what the request changed, and nothing when it changed nothing. Remove it. See docs/migrating.md.',
        "SessionModule option session.saveUninitialized is unknown: express-session's saveUninitialized is not " +
          'needed: a session is stored, and its cookie sent, only once it holds a value (consent: ' +
          'session.cookie.isEssential and hasConsent). Remove it. See docs/migrating.md.',
        "SessionModule option session.rolling is unknown: express-session's rolling is not needed: the server " +
          "slides a session's expiry (session.idleTimeout) on every request; the cookie lasts until the browser " +
          'closes. Remove it. See docs/migrating.md.',
      ].join('\n'),
    );
    await expectRefused(
      { secrets: SECRETS, session: { cookie: { maxAge: 86_400_000 } }, redis },
      SessionConfigurationError,
      'SessionModule option session.cookie.maxAge is unknown: maxAge is not supported: the cookie has no expiry, ' +
        'it ends when the browser closes (ASP.NET Core refuses it too). How long a session lives is ' +
        'session.idleTimeout, on the server; a "remember me" sign-in needs a cookie of its own. See ' +
        'docs/migrating.md.',
    );
    await expectRefused(
      { secrets: SECRETS, prefix: 'myapp:', session: { secret: 'keyboard cat', store: {} }, redis },
      SessionConfigurationError,
      [
        "SessionModule option prefix is unknown: connect-redis's prefix has no counterpart at the top level: Redis " +
          'keys are named by redis.applicationName (default nest). Sessions stored by connect-redis are not read ' +
          'in any case. See docs/migrating.md.',
        "SessionModule option session.secret is unknown: express-session's secret is the top-level secrets here: " +
          'an array of secrets of at least 32 bytes of entropy (the first signs, the others only verify). ' +
          "express-session's cookies are not read in any case. See docs/migrating.md.",
        "SessionModule option session.store is unknown: express-session's store has no counterpart in session: " +
          'sessions are kept by the top-level redis ({ url } or { client } with an ioredis client) or postgres ' +
          'option, or in memory by default. See docs/migrating.md.',
      ].join('\n'),
    );
    await expectRefused(
      { secrets: SECRETS, redis: { ...redis, ttl: 86_400 } },
      RedisConfigurationError,
      "Redis option redis.ttl is unknown: connect-redis's ttl is session.idleTimeout here (ms, sliding). See " +
        'docs/migrating.md.',
    );
  });

  it("connect-redis's node-redis client as redis.client: names the client to build instead", async () => {
    const nodeRedis = createNodeRedisClient({ url: silent.url });
    await expectRefused(
      { secrets: SECRETS, redis: { client: nodeRedis } },
      RedisConfigurationError,
      'Redis option client must be an ioredis Redis or Cluster instance (got a node-redis client, the one ' +
        'connect-redis takes: build an ioredis client instead, new Redis(url) from ioredis, or pass ' +
        'redis: { url }; see docs/migrating.md).',
    );
    await expectRefused(
      { secrets: SECRETS, redis: { client: { sendCommand: () => undefined } } },
      RedisConfigurationError,
      'Redis option client must be an ioredis Redis or Cluster instance (got another object): new Redis(...) or ' +
        'new Cluster(...) from ioredis.',
    );
  });

  it('lists the valid names when none is close, and names every unknown option at once', async () => {
    await expectRefused(
      { session: { colour: 'red' }, redis },
      SessionConfigurationError,
      'SessionModule option session.colour is unknown. The options of session are: cookie, idleTimeout, ' +
        'ioTimeout, maxValueBytes, maxSessionBytes, maxKeys, lock, slideSkipWindow.',
    );
    await expectRefused(
      { secret: SECRETS, session: { idleTimeOut: 1, cookie: { sameSIte: 'lax' } }, redis },
      SessionConfigurationError,
      [
        'SessionModule option secret is unknown: did you mean secrets?',
        'SessionModule option session.idleTimeOut is unknown: did you mean session.idleTimeout?',
        'SessionModule option session.cookie.sameSIte is unknown: did you mean session.cookie.sameSite?',
      ].join('\n'),
    );
  });

  it('refuses an options level that is not an object', async () => {
    await expectRefused(
      { session: 20 },
      SessionConfigurationError,
      'SessionModule option session must be an object (got 20).',
    );
    await expectRefused(
      { session: { lock: 'yes' } },
      SessionConfigurationError,
      'SessionModule option session.lock must be true, false or { ttl, acquireTimeout, retryInterval } (got "yes").',
    );
  });

  it('never quotes the password of a connection string given where an object was expected', async () => {
    const secretUrl = 'redis://admin:hunter2@127.0.0.1:6379';
    const { error: asRedis } = await startupError(fromConfig({ redis: secretUrl }));
    expect(asRedis.message).toContain('redis://***@127.0.0.1:6379');
    expect(asRedis.message).not.toContain('hunter2');
    const { error: asNode } = await startupError(fromConfig({ redis: { clusterNodes: [secretUrl] } }));
    expect(asNode).toBeInstanceOf(RedisConfigurationError);
    expect(asNode.message).toContain('clusterNodes[0]');
    expect(asNode.message).not.toContain('hunter2');
    // Without a scheme, and with a password holding '/' and ':'.
    const bare = 'admin:hun/ter:2@127.0.0.1:6379';
    const { error: asBareNode } = await startupError(fromConfig({ redis: { clusterNodes: [bare] } }));
    expect(asBareNode.message).toContain(
      'clusterNodes[0] must look like "host:port" (got "***@127.0.0.1:6379")',
    );
    expect(asBareNode.message).not.toMatch(/hun\/ter/);
  });

  it("isGlobal: a typo of the module's own option is suggested; returned by a forRootAsync factory it says where it goes", async () => {
    await expectRefused(
      { isGlobl: false, redis },
      SessionConfigurationError,
      'SessionModule option isGlobl is unknown: did you mean isGlobal? isGlobal is not a session option: give it to ' +
        'SessionModule.forRoot({ isGlobal, ... }) or SessionModule.forRootAsync({ isGlobal, useFactory, ... }) itself, ' +
        'not in what the factory returns.',
    );
    const { error } = await startupError(
      {},
      SessionModule.forRootAsync({ useFactory: () => fromConfig({ isGlobal: false, redis }) }),
    );
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toBe(
      'SessionModule option isGlobal is not a session option: give it to SessionModule.forRoot({ isGlobal, ... }) ' +
        'or SessionModule.forRootAsync({ isGlobal, useFactory, ... }) itself, not in what the factory returns.',
    );
  });

  it('forRootAsync: the factory result goes through the same check (useFactory and useClass)', async () => {
    @Injectable()
    class Config {
      readonly idle = 60_000;
    }
    @Module({ providers: [Config], exports: [Config] })
    class ConfigModule {}
    const { error, ms } = await startupError(
      {},
      SessionModule.forRootAsync({
        imports: [ConfigModule],
        inject: [Config],
        useFactory: (config: Config) => fromConfig({ session: { idleTimeOut: config.idle }, redis }),
      }),
    );
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toBe(
      'SessionModule option session.idleTimeOut is unknown: did you mean session.idleTimeout?',
    );
    expect(ms).toBeLessThan(5_000); // well under the 10 s connection timeout, with room for a loaded machine

    @Injectable()
    class SessionConfig implements SessionModuleOptionsFactory {
      createSessionOptions(): SessionModuleOptions {
        return fromConfig({ redis: { hots: '127.0.0.1', port: silent.port } });
      }
    }
    const viaClass = await startupError({}, SessionModule.forRootAsync({ useClass: SessionConfig }));
    expect(viaClass.error).toBeInstanceOf(RedisConfigurationError);
    expect(viaClass.error.message).toBe('Redis option redis.hots is unknown: did you mean redis.host?');
  });
});

describe('store options that exclude each other fail at startup, naming the one to remove', () => {
  const { redis } = refusedBeforeConnecting();

  it.each([
    [
      'redis and memory (the issue)',
      () => ({ redis, memory: { sizeLimit: 1024 } }),
      'SessionModule options redis and memory exclude each other: memory configures the built-in memory store, ' +
        'which redis replaces. Remove memory, or redis to keep sessions in memory.',
    ],
    [
      'redis and cache',
      () => ({ redis, cache: new MemoryDistributedCache() }),
      'SessionModule options redis and cache exclude each other: each would be the DistributedCache that holds ' +
        'the sessions. Remove one of them (to keep sessions in a store of your own next to Redis, give store instead of cache).',
    ],
    [
      'cache and memory',
      () => ({ cache: new MemoryDistributedCache(), memory: { clock: new ManualClock() } }),
      'SessionModule options cache and memory exclude each other: memory configures the built-in memory store, ' +
        'which cache replaces. Remove memory, or cache to keep sessions in memory.',
    ],
    [
      'store and memory',
      () => ({ store: new MemorySessionStore(), memory: { sizeLimit: 1024 } }),
      'SessionModule options store and memory exclude each other: memory configures the built-in memory store, ' +
        'which store replaces. Remove memory, or store to keep sessions in memory.',
    ],
  ])('%s', async (_, options, message) => {
    const { error, ms } = await startupError(options());
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toBe(message);
    expect(ms).toBeLessThan(5_000); // well under the 10 s connection timeout, with room for a loaded machine
  });

  it('forRootAsync: redis and memory from a factory', async () => {
    const { error } = await startupError(
      {},
      SessionModule.forRootAsync({ useFactory: () => ({ redis, memory: {} }) }),
    );
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toMatch(
      /^SessionModule options redis and memory exclude each other: .*Remove memory/,
    );
  });
});

describe('every documented option, set at once, still starts', () => {
  /** Starts the app, checks a session works, closes it. */
  async function startsAndCounts(options: SessionModuleOptions, module?: DynamicModule): Promise<void> {
    const { app, url } = await startSessionApp(options, module ? { module } : {});
    try {
      const res = await request(url).get('/counter').expect(200, { count: 1 });
      expect(findSetCookie(res, 'sid')).toBeDefined();
    } finally {
      await app.close();
    }
  }

  const session = {
    cookie: {
      name: 'sid',
      path: '/',
      domain: 'example.test',
      httpOnly: true,
      sameSite: 'lax',
      securePolicy: 'sameAsRequest',
      isEssential: true,
    },
    idleTimeout: 30 * 60_000,
    ioTimeout: 5_000,
    maxValueBytes: 64 * 1024,
    maxSessionBytes: 512 * 1024,
    maxKeys: 100,
    slideSkipWindow: 10_000,
  } satisfies SessionModuleOptions['session'];
  const tempData = {
    provider: 'cookie',
    cookie: {
      name: 'flash',
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      securePolicy: 'none',
      isEssential: true,
    },
    maxCookieBytes: 8 * 1024,
  } satisfies SessionModuleOptions['tempData'];
  const common = { secrets: SECRETS, tempData, hasConsent: () => true, asyncContext: true };

  it('memory: memory { sizeLimit, clock } and session.lock { ttl, acquireTimeout, retryInterval }', async () => {
    await startsAndCounts({
      ...common,
      memory: { sizeLimit: 8 * 1024 * 1024, clock: new ManualClock(Date.now()) },
      session: { ...session, lock: { ttl: 30_000, acquireTimeout: 5_000, retryInterval: 25 } },
    });
  });

  it('cache, and store with cache', async () => {
    await startsAndCounts({ ...common, session, cache: new MemoryDistributedCache() });
    await startsAndCounts({
      ...common,
      session,
      cache: new MemoryDistributedCache(),
      store: new MemorySessionStore(),
    });
  });

  describe('on Redis', () => {
    let tls: RedisServerProcess;

    beforeAll(async () => {
      tls = await RedisServerProcess.start({ password: 'pa55word', tls: true });
    });
    afterAll(() => tls.stop());

    it('host, port, accessKey, username, ssl (TLS options, not walked), every timeout and nearCache', async () => {
      await startsAndCounts({
        ...common,
        session,
        redis: {
          host: tls.host,
          port: tls.port,
          accessKey: 'pa55word',
          username: 'default',
          ssl: { ca: tls.tls!.ca, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
          databaseId: 2,
          applicationName: 'every-option',
          connectionTimeoutInMilliseconds: 5_000,
          operationTimeoutInMilliseconds: 1_000,
          retryTimeoutInMilliseconds: 500,
          throwOnError: true,
          waitForReplicas: 0,
          waitForReplicasTimeoutInMilliseconds: 500,
          nearCache: { maxEntries: 100, maxAgeInMilliseconds: 1_000 },
        },
      });
    });

    it('url with store (allowed: store holds sessions, redis is the DistributedCache), and client (not walked)', async () => {
      await startsAndCounts({
        ...common,
        session,
        redis: { url: tls.url, ssl: { ca: tls.tls!.ca } },
        store: new MemorySessionStore(),
      });
      const client = new Redis({ ...tls.clientOptions(), lazyConnect: true });
      try {
        await startsAndCounts(
          {},
          SessionModule.forRootAsync({ useFactory: () => ({ ...common, session, redis: { client } }) }),
        );
      } finally {
        client.disconnect();
      }
    });
  });

  it('clusterNodes as strings and as { host, port }; a node of a cluster of shards given as url or host is refused, a single-shard one starts', async () => {
    const cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 0 });
    try {
      const [first, second] = cluster.nodes;
      await startsAndCounts({
        ...common,
        session,
        redis: { clusterNodes: [`${first.host}:${first.port}`, { host: second.host, port: second.port }] },
      });
      // One node given as a standalone Redis (a probe: it started, then most sessions answered 503 MOVED).
      for (const redis of [
        { url: `redis://${first.host}:${first.port}` },
        { host: first.host, port: first.port },
      ]) {
        const { error } = await startupError({ ...common, session, redis });
        expect(error).toBeInstanceOf(RedisConfigurationError);
        expect(error.message).toBe(
          `Redis at ${first.host}:${first.port} is a node of a Redis Cluster: a connection to one node (the url or ` +
            'host option, or an ioredis Redis client) reaches only its slots, and the sessions kept on the others ' +
            "would fail (MOVED). Use the clusterNodes option (['host:port', ...], one node or more) or pass an " +
            'ioredis Cluster as client.',
        );
      }
    } finally {
      await cluster.stop();
    }
    // A single-shard cluster (one node serving every slot) works through a standalone connection: let through.
    const single = await RedisServerProcess.start({ extraArgs: ['--cluster-enabled', 'yes'] });
    try {
      await single.admin().call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      for (
        let i = 0;
        i < 100 && !/cluster_state:ok/.test(String(await single.admin().call('CLUSTER', 'INFO')));
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await startsAndCounts({ ...common, session, redis: { host: single.host, port: single.port } });
    } finally {
      await single.stop();
    }
    // The other way round: clusterNodes pointing at a standalone server (it said "could not connect ... TLS?").
    const standalone = await RedisServerProcess.start();
    try {
      const { error } = await startupError({
        ...common,
        session,
        redis: { clusterNodes: [`${standalone.host}:${standalone.port}`] },
      });
      expect(error).toBeInstanceOf(RedisConfigurationError);
      expect(error.message).toMatch(
        /^Redis at the cluster nodes \S+ is not a Redis Cluster \(cluster support disabled\): clusterNodes is for a cluster; for a standalone server use the url \(or host and port\) option\./,
      );
    } finally {
      await standalone.stop();
    }
  });
});
