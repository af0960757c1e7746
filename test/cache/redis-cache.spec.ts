import { createServer, type Server } from 'node:net';
import { inspect } from 'node:util';
import { Logger, type LoggerService } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { RedisConfigurationError, type RedisCacheOptions } from 'nest-session-state';
import { RedisConnection, RedisDistributedCache, resolveRedisCacheOptions } from 'nest-session-state/redis';
import {
  aclUser,
  CommandMonitor,
  RedisClusterProcess,
  RedisServerProcess,
  freePort,
} from '../support/redis/index.js';
import { distributedCacheContract } from './distributed-cache.contract.js';
import { CaptureLogger } from '../support/capture-logger.js';
import type { SessionKeyAccess } from '../../libs/session-state/src/cache/redis/redis.connection.js';
import { userIndexKeys } from '../../libs/session-state/src/users/redis/redis-user-session.keys.js';

const UNIT = 150;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const connections: RedisConnection[] = [];

async function connectCache(options: RedisCacheOptions): Promise<RedisDistributedCache> {
  const connection = new RedisConnection(resolveRedisCacheOptions(options));
  await connection.connect();
  connections.push(connection);
  return new RedisDistributedCache(connection);
}

/** Closes the connections opened so far (their servers are about to stop, or have). */
const closeConnections = () => Promise.all(connections.splice(0).map((c) => c.close()));

afterAll(closeConnections);

describe('RedisDistributedCache on a standalone server', () => {
  let server: RedisServerProcess;
  let cache: RedisDistributedCache;
  beforeAll(async () => {
    server = await RedisServerProcess.start();
    cache = await connectCache({ host: server.host, port: server.port, applicationName: 'contract' });
  });
  afterAll(() => server.stop());

  distributedCacheContract(() => ({ cache, advance: sleep, unit: UNIT }));

  it('a full Redis (maxmemory, noeviction): set answers OOM and stores nothing, over an entry or a new key', async () => {
    await cache.set('full-old', Uint8Array.of(1));
    const admin = server.admin();
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      const big = new Uint8Array(100_000).fill(7);
      await expect(cache.set('full-old', big)).rejects.toThrow(/OOM command not allowed/);
      await expect(cache.set('full-new', big)).rejects.toThrow(/OOM command not allowed/);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(await cache.get('full-old')).toEqual(Uint8Array.of(1));
    expect(await cache.get('full-new')).toBeUndefined();
  });

  it('gets and slides in one round trip (ASP.NET needs two)', async () => {
    await cache.set('slide', Uint8Array.of(1), { slidingExpiration: 60_000 });
    const monitor = await CommandMonitor.start(server);
    try {
      await monitor.settle();
      monitor.reset();
      await cache.get('slide');
      await monitor.settle();
      expect(monitor.commands()).toEqual(['EVALSHA']);
      expect(await server.admin().pttl('contract_slide')).toBeGreaterThan(59_000);
    } finally {
      await monitor.stop();
    }
  });

  it('lays entries out under <applicationName>_<key>', async () => {
    await cache.set('layout', Uint8Array.of(7));
    expect(await server.admin().exists('contract_layout')).toBe(1);
  });

  it('an operation against a paused server fails within operationTimeoutInMilliseconds', async () => {
    const quick = await connectCache({
      host: server.host,
      port: server.port,
      operationTimeoutInMilliseconds: 200,
    });
    await server.pause(1500);
    const started = Date.now();
    await expect(quick.get('anything')).rejects.toThrow(/timed out after operationTimeoutInMilliseconds=200/);
    expect(Date.now() - started).toBeLessThan(600);
    await sleep(1600);
  });

  it('retries per the seed and succeeds when the server comes back inside the window', async () => {
    const retrying = await connectCache({
      host: server.host,
      port: server.port,
      operationTimeoutInMilliseconds: 150,
      retryTimeoutInMilliseconds: 3000,
    });
    await retrying.set('retry', Uint8Array.of(5));
    await server.pause(700);
    const started = Date.now();
    expect([...(await retrying.get('retry'))!]).toEqual([5]);
    const elapsed = Date.now() - started;
    // attempt at 0 (times out at 150), retry at ~170 (paused), retry ~1s later succeeds
    expect(elapsed).toBeGreaterThan(700);
    expect(elapsed).toBeLessThan(2500);
  });

  it('retries first after 20 ms, not a whole retry interval: a stall just past the first try is bridged at once', async () => {
    const retrying = await connectCache({
      host: server.host,
      port: server.port,
      operationTimeoutInMilliseconds: 500,
      retryTimeoutInMilliseconds: 3000,
    });
    await retrying.set('first-retry', Uint8Array.of(6));
    // Hung (SIGSTOP, its connections open) until 100 ms after the first try timed out: the retry, sent 20 ms
    // after that timeout, waits in the socket and is answered as the server resumes, long before its own timeout.
    server.freeze();
    const started = Date.now();
    const read = retrying.get('first-retry');
    try {
      await sleep(600);
    } finally {
      server.thaw();
    }
    expect([...(await read)!]).toEqual([6]);
    const elapsed = Date.now() - started;
    // attempt at 0 (times out at 500), retry at ~520, answered at the thaw (~600); a first retry a second after
    // the timeout would answer at ~1500.
    expect(elapsed).toBeGreaterThanOrEqual(590);
    expect(elapsed).toBeLessThan(1100);
  });

  it('gives up after retryTimeoutInMilliseconds with one final try', async () => {
    const retrying = await connectCache({
      host: server.host,
      port: server.port,
      operationTimeoutInMilliseconds: 100,
      retryTimeoutInMilliseconds: 1200,
    });
    await server.pause(3000);
    const started = Date.now();
    await expect(retrying.get('x')).rejects.toThrow(/timed out/);
    const elapsed = Date.now() - started;
    // attempts at 0, 20+100, ~1120 (last regular), final at 1200 (+100 timeout)
    expect(elapsed).toBeGreaterThanOrEqual(1200);
    expect(elapsed).toBeLessThan(2200);
    await sleep(3100 - elapsed);
  });

  it('throwOnError: false swallows the failure, records lastError and logs it', async () => {
    const lines: string[] = [];
    const capture: LoggerService = {
      log: (m: unknown) => lines.push(String(m)),
      warn: (m: unknown) => lines.push(String(m)),
      error: (m: unknown) => lines.push(String(m)),
      debug: (m: unknown) => lines.push(String(m)),
      verbose: () => undefined,
    };
    Logger.overrideLogger(capture);
    try {
      const lenient = await connectCache({
        host: server.host,
        port: server.port,
        operationTimeoutInMilliseconds: 100,
        throwOnError: false,
      });
      await server.pause(400);
      expect(await lenient.get('x')).toBeUndefined();
      expect(lenient.lastError?.message).toMatch(/timed out/);
      expect(lines.some((l) => /Redis is failing/.test(l))).toBe(true);
      await sleep(450);
    } finally {
      Logger.overrideLogger(false);
      Logger.overrideLogger(new Logger());
    }
  });

  it('reconnects with a backoff of at most 1 s: after an outage long enough to reach that cap, answers within about a second of the restart', async () => {
    const own = await RedisServerProcess.start();
    try {
      const reconnecting = await connectCache({ host: own.host, port: own.port, applicationName: 'backoff' });
      await reconnecting.set('before', Uint8Array.of(1));
      await own.kill();
      // Reconnects refused after 100, 200, ... ms: the delay reaches its 1 s cap at the 10th try, 5.5 s in.
      await sleep(6_400);
      await own.restart();
      const restarted = Date.now();
      let answered = false;
      while (!answered && Date.now() - restarted < 6_000) {
        answered = await reconnecting.set('after', Uint8Array.of(2)).then(
          () => true,
          () => sleep(25).then(() => false), // not connected yet: refused at once
        );
      }
      const ms = Date.now() - restarted;
      // The next reconnect comes at most 1 s after the last refused one (a 10 s backoff would leave it down ~3.5 s).
      expect(answered).toBe(true);
      expect(ms).toBeLessThan(2_000);
      expect(await reconnecting.get('after')).toEqual(Uint8Array.of(2));
    } finally {
      await own.stop();
    }
  }, 20_000);
});

describe('RedisDistributedCache connection options', () => {
  it('AUTH with accessKey; a wrong password fails at startup naming accessKey', async () => {
    const server = await RedisServerProcess.start({ password: 'correct-horse-battery' });
    try {
      const cache = await connectCache({
        host: server.host,
        port: server.port,
        accessKey: 'correct-horse-battery',
      });
      await cache.set('a', Uint8Array.of(1));
      expect(await cache.get('a')).toBeDefined();
      await expect(
        connectCache({ host: server.host, port: server.port, accessKey: 'wrong' }),
      ).rejects.toThrow(/accessKey/);
      await expect(connectCache({ host: server.host, port: server.port })).rejects.toThrow(/accessKey/);
    } finally {
      await server.stop();
    }
  });

  it('a failed start leaves no timer behind for long: the process can exit at once (nothing listens, a wrong password, a silent host)', async () => {
    const server = await RedisServerProcess.start({ password: 'correct-horse-battery' });
    const silent: Server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    // ioredis destroys a socket it closes after its disconnectTimeout (2 s by default) by a timer it never clears when
    // the socket is gone already: it held the process that long. Timers of a second or more started meanwhile, and
    // still pending once the start failed, are what would hold it (counted here, not the process's other timers).
    const real = { set: globalThis.setTimeout, clear: globalThis.clearTimeout };
    const pending = new Set<unknown>();
    globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = real.set(
        (...a: unknown[]) => {
          pending.delete(timer);
          callback(...a);
        },
        ms,
        ...args,
      );
      if ((ms ?? 0) >= 1000) pending.add(timer);
      return timer;
    }) as typeof setTimeout;
    globalThis.clearTimeout = (timer?: Parameters<typeof clearTimeout>[0]) => {
      pending.delete(timer);
      real.clear(timer);
    };
    try {
      for (const options of [
        { host: '127.0.0.1', port: await freePort() },
        { host: server.host, port: server.port, accessKey: 'wrong' },
        {
          host: '127.0.0.1',
          port: (silent.address() as { port: number }).port,
          connectionTimeoutInMilliseconds: 300,
        },
      ]) {
        pending.clear();
        await expect(connectCache(options)).rejects.toThrow(RedisConfigurationError);
        await sleep(150);
        expect([options, pending.size]).toEqual([options, 0]);
      }
    } finally {
      globalThis.setTimeout = real.set;
      globalThis.clearTimeout = real.clear;
      silent.close();
      await server.stop();
    }
  });

  it('a refused login names where the credentials were given: accessKey, the url, or none at all', async () => {
    const server = await RedisServerProcess.start({ password: 'correct-horse-battery' });
    const failureOf = (options: RedisCacheOptions) =>
      connectCache(options).then(
        () => 'connected',
        (error: unknown) => (error as Error).message,
      );
    try {
      expect(await failureOf({ host: server.host, port: server.port, accessKey: 'Wrong-PW-1' })).toMatch(
        /rejected the credentials: check the accessKey option/,
      );
      const fromUrl = await failureOf({ url: `redis://:Wrong-PW-2@${server.host}:${server.port}` });
      expect(fromUrl).toMatch(
        /rejected the credentials: check the password \(and user name\) in the url option/,
      );
      expect(fromUrl).not.toContain('Wrong-PW-2');
      expect(await failureOf({ url: `redis://${server.host}:${server.port}` })).toMatch(
        /requires credentials and none were given: set the accessKey option .* or put them in url/,
      );
    } finally {
      await server.stop();
    }
  });

  it('a refused password never reaches the startup error or its cause chain (ioredis keeps the AUTH arguments)', async () => {
    const server = await RedisServerProcess.start({ password: 'correct-horse-battery' });
    const admin = server.admin();
    try {
      // An ACL user whose password is right but who is disabled, and one whose password is wrong.
      await admin.call('ACL', 'SETUSER', 'carol', 'off', '>Carol-Secret-PW-1234', '~*', '+@all');
      for (const [username, accessKey] of [
        ['carol', 'Carol-Secret-PW-1234'],
        ['default', 'Wrong-Secret-PW-5678'],
      ]) {
        const failure = await connectCache({
          host: server.host,
          port: server.port,
          username,
          accessKey,
        }).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(RedisConfigurationError);
        expect((failure as Error).message).toMatch(/rejected the credentials: check the accessKey option/);
        // What Nest's ExceptionHandler prints: the error and every cause, with all their properties.
        const printed = inspect(failure, { depth: Infinity, showHidden: true });
        expect(printed).toContain('WRONGPASS');
        expect(printed).not.toContain(accessKey);
      }
    } finally {
      await server.stop();
    }
  });

  it('an ACL user refused the commands the library needs (NOPERM) is told so at startup, not "could not connect"', async () => {
    const server = await RedisServerProcess.start();
    try {
      await server
        .admin()
        .call('ACL', 'SETUSER', 'dave', 'on', '>Dave-Secret-PW-1234', '~*', '+@read', '+hello', '+ping');
      const failure = connectCache({
        host: server.host,
        port: server.port,
        username: 'dave',
        accessKey: 'Dave-Secret-PW-1234',
      });
      await expect(failure).rejects.toThrow(
        /refused a command to the ACL user dave \(NOPERM\).*\+@scripting/,
      );
      await expect(failure).rejects.not.toThrow(/Could not connect/);
    } finally {
      await server.stop();
    }
  });

  it('an ACL user whose key patterns leave out the ended-session marks (enough for 0.1.0) is told at startup, naming them', async () => {
    const server = await RedisServerProcess.start();
    // Every command, but only the data and lock keys: regenerate() and abandon() would answer 503 as an outage.
    const options = await aclUser(server, 'erin', ['~{shop_*}_Data', '~{shop_*}_Lock']);
    const sessionConnection = async () => {
      const connection = new RedisConnection(resolveRedisCacheOptions(options));
      connections.push(connection);
      await connection.connect({ sessionKeys: true }); // what SessionModule does when sessions live in Redis
    };
    try {
      await expect(sessionConnection()).rejects.toThrow(
        /refused the ACL user erin the session keys \(NOPERM\).*\{shop_\*\}_Ended.*Grant the key pattern ~\{shop_\*\}_\*/,
      );
      // The same user for a plain cache (an app's own session store, or the cache API): no session keys needed.
      await connectCache(options);
      // With the pattern the message advises, sessions start too.
      await server.admin().call('ACL', 'SETUSER', 'erin', '~{shop_*}_*');
      await sessionConnection();
    } finally {
      await closeConnections(); // before the server goes: a connection left open would log its outage later
      await server.stop();
    }
  });

  it("an ACL user without the lock's keys (session.lock) or a user index's (users) is told at startup when they are used", async () => {
    const server = await RedisServerProcess.start();
    // The data and ended marks only: enough without the lock and the user index (every sign-in answered 503,
    // logged as an outage, before).
    const options = await aclUser(server, 'fay', ['~{shop_*}_Data', '~{shop_*}_Ended']);
    const sessionConnection = async (access: SessionKeyAccess) => {
      const connection = new RedisConnection(resolveRedisCacheOptions(options));
      connections.push(connection);
      await connection.connect({ sessionKeys: access });
    };
    const userIndex = userIndexKeys('shop', 'startup-check');
    try {
      await sessionConnection({});
      await expect(sessionConnection({ lock: true })).rejects.toThrow(
        /refused the ACL user fay the session keys \(NOPERM\).*\{shop_\*\}_Lock with session\.lock/,
      );
      await expect(sessionConnection({ userIndex })).rejects.toThrow(
        /refused the ACL user fay the session keys \(NOPERM\).*\{shop_user_\*\}_Sessions and _SessionInfo with users/,
      );
      await server
        .admin()
        .call(
          'ACL',
          'SETUSER',
          'fay',
          '~{shop_*}_Lock',
          '~{shop_user_*}_Sessions',
          '~{shop_user_*}_SessionInfo',
        );
      await sessionConnection({ lock: true, userIndex });
    } finally {
      await closeConnections(); // before the server goes: a connection left open would log its outage later
      await server.stop();
    }
  });

  it('a key the ACL user may not use at run time is a permission error: not retried, not logged as an outage', async () => {
    const server = await RedisServerProcess.start();
    const capture = new CaptureLogger();
    Logger.overrideLogger(capture);
    try {
      const connection = new RedisConnection(
        resolveRedisCacheOptions({
          ...(await aclUser(server, 'gus', ['~{shop_*}_Data', '~{shop_*}_Ended'])),
          retryTimeoutInMilliseconds: 3000,
        }),
      );
      connections.push(connection);
      await connection.connect({ sessionKeys: {} }); // users not configured: the user index is not checked
      const [zset] = userIndexKeys('shop', 'ada');
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await expect(
          connection.execute('USER INDEX ADD', () => connection.client.exists(zset)),
        ).rejects.toThrow(/^Redis operation USER INDEX ADD was refused: NOPERM/);
        expect(Date.now() - started).toBeLessThan(500); // no retries for 3 s
      }
      expect(
        capture.lines.filter((l) =>
          l.message.startsWith('[RedisPermissionDenied] Redis refused USER INDEX ADD to the ACL user gus'),
        ),
      ).toHaveLength(1);
      expect(capture.has(/Redis is failing|answers again/)).toBe(false);
    } finally {
      Logger.overrideLogger(false);
      Logger.overrideLogger(new Logger());
      await closeConnections();
      await server.stop();
    }
  });

  it('TLS with ssl (private CA); TLS against a plain port, plain against TLS, an untrusted CA (also through clusterNodes) and a certificate for another name fail at startup naming ssl and what to give', async () => {
    const tlsServer = await RedisServerProcess.start({ tls: true });
    const plain = await RedisServerProcess.start();
    try {
      const cache = await connectCache({
        host: '127.0.0.1',
        port: tlsServer.port,
        ssl: { ca: tlsServer.tls!.ca },
      });
      await cache.set('tls', Uint8Array.of(1));
      expect(await cache.get('tls')).toBeDefined();
      await expect(
        connectCache({
          port: plain.port,
          ssl: { ca: tlsServer.tls!.ca },
          connectionTimeoutInMilliseconds: 1000,
        }),
      ).rejects.toThrow(/ssl/);
      await expect(
        connectCache({ port: tlsServer.port, connectionTimeoutInMilliseconds: 1000 }),
      ).rejects.toThrow(/ssl/);
      // The certificate is refused: the message says why, and what to give.
      await expect(
        connectCache({ port: tlsServer.port, ssl: true, connectionTimeoutInMilliseconds: 1000 }),
      ).rejects.toThrow(
        /TLS handshake with Redis at 127\.0\.0\.1:\d+ failed: its certificate is not signed by a CA this process trusts .*give that CA certificate \(PEM\) as ca in the ssl option/,
      );
      await expect(
        connectCache({
          port: tlsServer.port,
          ssl: { ca: tlsServer.tls!.ca, servername: 'cache.internal' },
          connectionTimeoutInMilliseconds: 1000,
        }),
      ).rejects.toThrow(
        /its certificate does not list the host name \(or IP address\) it was reached by: connect by a name the certificate lists, or give that name as servername in the ssl option\./,
      );
      // Reached by a name the certificate lists: accepted.
      const byName = await connectCache({
        host: 'localhost',
        port: tlsServer.port,
        ssl: { ca: tlsServer.tls!.ca },
      });
      await byName.set('tls', Uint8Array.of(2));
      // Through clusterNodes, the nodes' own errors tell it (ioredis's Cluster itself says only "no startup node").
      await expect(
        connectCache({
          clusterNodes: [`127.0.0.1:${tlsServer.port}`],
          ssl: true,
          connectionTimeoutInMilliseconds: 1000,
        }),
      ).rejects.toThrow(
        /TLS handshake with Redis at the cluster nodes 127\.0\.0\.1:\d+ failed: its certificate is not signed by a CA this process trusts .*as ca in the ssl option/,
      );
      // TLS options Node refuses before any handshake (a client certificate that is not PEM): still the module's error.
      await expect(
        connectCache({
          clusterNodes: [`127.0.0.1:${tlsServer.port}`],
          ssl: { ca: tlsServer.tls!.ca, cert: 'not a PEM', key: 'not a PEM' },
          connectionTimeoutInMilliseconds: 1000,
        }),
      ).rejects.toThrow(RedisConfigurationError);
    } finally {
      await tlsServer.stop();
      await plain.stop();
    }
  });

  it('databaseId, a URL and an existing ioredis client', async () => {
    const server = await RedisServerProcess.start();
    try {
      const inDb3 = await connectCache({
        host: server.host,
        port: server.port,
        databaseId: 3,
        applicationName: 'db',
      });
      await inDb3.set('k', Uint8Array.of(3));
      const admin = server.admin();
      await admin.select(3);
      expect(await admin.exists('db_k')).toBe(1);
      await admin.select(0);

      const viaUrl = await connectCache({ url: `redis://127.0.0.1:${server.port}/3`, applicationName: 'db' });
      expect([...(await viaUrl.get('k'))!]).toEqual([3]);

      const client = new Redis({ host: server.host, port: server.port, db: 3, lazyConnect: true });
      const viaClient = await connectCache({ client, applicationName: 'db' });
      expect([...(await viaClient.get('k'))!]).toEqual([3]);
      await connections.pop()!.close(); // does not close the app's client
      expect(await client.ping()).toBe('PONG');
      client.disconnect();
    } finally {
      await server.stop();
    }
  });

  it("an ioredis client passed in that cannot connect: the message says where it points and names that client's options", async () => {
    const closed = await freePort();
    const alsoClosed = await freePort();
    // A URL node carries credentials: the message never does.
    const cluster = new Cluster(
      [{ host: '127.0.0.1', port: closed }, `redis://app:s3cret@127.0.0.1:${alsoClosed}`],
      {
        lazyConnect: true,
      },
    );
    try {
      const refused = (await connectCache({ client: cluster, connectionTimeoutInMilliseconds: 1000 }).catch(
        (error: unknown) => error,
      )) as Error;
      expect(refused.message).not.toContain('s3cret');
      expect(refused.message).toMatch(
        new RegExp(
          `^Could not connect to Redis at the cluster nodes 127\\.0\\.0\\.1:${closed}, 127\\.0\\.0\\.1:${alsoClosed} ` +
            '.*check the ioredis client ' +
            'passed as client \\(its host and port or cluster nodes, and tls\\)',
        ),
      );
    } finally {
      cluster.disconnect();
    }
    const server = await RedisServerProcess.start({ password: 'right' });
    const client = new Redis({ host: server.host, port: server.port, password: 'wrong', lazyConnect: true });
    try {
      await expect(connectCache({ client, connectionTimeoutInMilliseconds: 1000 })).rejects.toThrow(
        `Redis at 127.0.0.1:${server.port} refused the credentials: check the ioredis client passed as client (its password and username).`,
      );
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it("a url whose password or user name has a % not percent-encoded: refused naming the url's part, the value not quoted", () => {
    // It threw decodeURIComponent's bare "URIError: URI malformed", naming no option.
    for (const [url, what, option] of [
      ['redis://:p%zzSecret@x:1', 'password', 'accessKey'],
      ['redis://us%er:secret@x:1', 'user name', 'username'],
    ]) {
      const refusal = (() => {
        try {
          resolveRedisCacheOptions({ url });
        } catch (error) {
          return error;
        }
      })() as Error;
      expect(refusal).toBeInstanceOf(RedisConfigurationError);
      expect(refusal.message).toBe(
        `Redis option url has a ${what} with a % that does not start a percent-encoded byte (%XX): percent-encode ` +
          `the ${what} in the url (encodeURIComponent; % is %25), or give it as ${option} instead.`,
      );
    }
    expect(resolveRedisCacheOptions({ url: 'redis://us%25er:p%25Secret@x:1' })).toMatchObject({
      username: 'us%er',
      accessKey: 'p%Secret',
    });
  });

  it('bad configuration fails fast with a message naming the option', async () => {
    expect(() => resolveRedisCacheOptions({ url: 'not a url' })).toThrow(/url/);
    expect(() => resolveRedisCacheOptions({ url: 'http://localhost:6379' })).toThrow(/redis:\/\//);
    expect(() => resolveRedisCacheOptions({ port: 70000 })).toThrow(/port must be a TCP port/);
    expect(() => resolveRedisCacheOptions({ port: 0 })).toThrow(/port/);
    expect(() => resolveRedisCacheOptions({ operationTimeoutInMilliseconds: -1 })).toThrow(
      /operationTimeoutInMilliseconds/,
    );
    expect(() => resolveRedisCacheOptions({ clusterNodes: ['a:1'], databaseId: 2 })).toThrow(/databaseId/);
    expect(() => resolveRedisCacheOptions({ applicationName: 'a{b}' })).toThrow(/applicationName/);
    expect(() => resolveRedisCacheOptions({ url: 'redis://x:1', host: 'y' })).toThrow(/host\/port/);
    expect(() => resolveRedisCacheOptions({ applicationName: 5 as unknown as string })).toThrow(
      'Redis option applicationName must be a string (got 5)',
    );
    expect(() => resolveRedisCacheOptions({ clusterNodes: '127.0.0.1:7000' as unknown as string[] })).toThrow(
      /clusterNodes must be an array of "host:port" or \{ host, port \} \(got "127.0.0.1:7000"\): write clusterNodes: \['host:port', \.\.\.\]/,
    );
    // A setting in the url and in an option: refused when they differ (the option used to win silently).
    expect(() => resolveRedisCacheOptions({ url: 'rediss://x:1', ssl: false })).toThrow(
      'Redis option url starts with rediss:// (TLS) but ssl is false',
    );
    expect(() => resolveRedisCacheOptions({ url: 'redis://x:1/2', databaseId: 3 })).toThrow(
      'Redis options url and databaseId give two different values for the database',
    );
    expect(() => resolveRedisCacheOptions({ url: 'redis://:in-url@x:1', accessKey: 'other' })).toThrow(
      'Redis options url and accessKey give two different values for the password',
    );
    expect(
      resolveRedisCacheOptions({ url: 'redis://:same@x:1/2', accessKey: 'same', databaseId: 2 }),
    ).toMatchObject({
      accessKey: 'same',
      databaseId: 2,
    });
    expect(resolveRedisCacheOptions({ url: 'rediss://x:1', ssl: { ca: 'pem' } }).tls).toEqual({ ca: 'pem' });
    // Unknown names, as options read from configuration carry them: the path from the options' root.
    const unknown = (options: object) => () => resolveRedisCacheOptions(options);
    expect(unknown({ hots: 'x' })).toThrow(
      new RedisConfigurationError('Redis option hots is unknown: did you mean host?'),
    );
    expect(unknown({ nearCache: { maxEntrys: 1 } })).toThrow(
      new RedisConfigurationError(
        'Redis option nearCache.maxEntrys is unknown: did you mean nearCache.maxEntries?',
      ),
    );
    expect(unknown({ ssl: { ca: 'x', anyTlsOption: 1 }, client: undefined })).not.toThrow();

    const closed = await freePort();
    const refused = Date.now();
    await expect(connectCache({ port: closed, connectionTimeoutInMilliseconds: 2000 })).rejects.toThrow(
      /host and port/,
    );
    expect(Date.now() - refused).toBeLessThan(2000);

    // A host that accepts TCP but never answers: the connection timeout bounds startup.
    const silent: Server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    await expect(connectCache({ port, connectionTimeoutInMilliseconds: 500 })).rejects.toThrow(
      /connectionTimeoutInMilliseconds=500/,
    );
    expect(Date.now() - started).toBeLessThan(1500);
    silent.close();
  });
});

describe('RedisDistributedCache on a 3-master cluster', () => {
  let cluster: RedisClusterProcess;
  let cache: RedisDistributedCache;
  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3 });
    cache = await connectCache({
      clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`),
      applicationName: 'c',
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(connections.splice(0).map((c) => c.close()));
    await cluster.stop();
  });

  distributedCacheContract(() => ({ cache, advance: sleep, unit: UNIT }));
});
