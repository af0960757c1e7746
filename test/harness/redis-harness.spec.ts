import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import {
  CommandMonitor,
  RedisClusterProcess,
  RedisServerProcess,
  closeClient,
  commandStats,
  diffStats,
  freePort,
  stopAllRedis,
} from '../support/redis/index.js';

/** Test clients: no reconnects, no retries, so failures surface at once; closed after each test. */
const clients: Redis[] = [];
function testClient(options: RedisOptions, url?: string): Redis {
  const merged = { retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 2000, ...options };
  const client = url === undefined ? new Redis(merged) : new Redis(url, merged);
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

/** Connects a lazyConnect client and resolves with the first error it emits (the real cause of a failure). */
function connectError(client: Redis): Promise<Error> {
  const error = new Promise<Error>((resolve) => client.once('error', resolve));
  client.connect().catch(() => undefined);
  return error;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

afterEach(() => Promise.all(clients.splice(0).map(closeClient)));
afterAll(() => stopAllRedis());

describe('freePort', () => {
  it('returns distinct ports <= 55000, never 6379, also under concurrent calls', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) {
      expect(port).toBeLessThanOrEqual(55000);
      expect(port).not.toBe(6379);
    }
  });

  it('withClusterBus: port + 10000 is free too', async () => {
    const port = await freePort({ withClusterBus: true });
    expect(port + 10000).toBeLessThanOrEqual(65535);
    expect(await canBind(port)).toBe(true);
    expect(await canBind(port + 10000)).toBe(true);
  });
});

describe('RedisServerProcess', () => {
  it('starts a plain server that answers PING, not on 6379, and stop() removes process and temp dir', async () => {
    const server = await RedisServerProcess.start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await server.admin().ping()).toBe('PONG');
    expect(await testClient({ host: server.host, port: server.port }).ping()).toBe('PONG');

    const pid = server.pid!;
    expect(isAlive(pid)).toBe(true);
    expect(existsSync(server.dir)).toBe(true);
    await server.stop();
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });

  it('fails clearly when its port is taken, even if the squatter answers like Redis', async () => {
    const port = await freePort();
    // The harness's readiness probe destroys its socket with the squatter's reply maybe unread: the squatter's
    // side may see a reset, which must not surface as an uncaught error of this suite.
    const squatter = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', () => socket.write('+PONG\r\n'));
    });
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      await expect(RedisServerProcess.start({ port })).rejects.toThrow(
        /redis-server on port \d+ exited \(code 1.*\n[\s\S]*Address already in use/,
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('with a password rejects a client without it (NOAUTH) and accepts one with it', async () => {
    const server = await RedisServerProcess.start({ password: 'p@ss word' });
    try {
      // ioredis 6 speaks RESP3: its handshake (HELLO 3, no AUTH) is refused, so the connection closes.
      const anonymous = testClient({ host: server.host, port: server.port, lazyConnect: true });
      expect((await connectError(anonymous)).message).toMatch(/NOAUTH/);
      // Over RESP2 the connection opens and each command is refused.
      const anonymousResp2 = testClient({
        host: server.host,
        port: server.port,
        protocol: 2,
        enableReadyCheck: false,
      });
      await expect(anonymousResp2.get('k')).rejects.toThrow(/NOAUTH/);
      expect(
        await testClient({ ...server.clientOptions(), password: 'wrong' })
          .ping()
          .catch(String),
      ).toMatch(/WRONGPASS|invalid password/);

      expect(await testClient({ ...server.clientOptions() }).ping()).toBe('PONG');
      expect(server.url).toBe(`redis://:p%40ss%20word@127.0.0.1:${server.port}`);
      expect(await testClient({}, server.url).ping()).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('with tls accepts a client trusting the generated CA and a plain client fails', async () => {
    const server = await RedisServerProcess.start({ tls: true });
    try {
      expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
      expect(server.tls!.ca.toString()).toContain('BEGIN CERTIFICATE');
      const secure = testClient({ host: server.host, port: server.port, tls: { ca: server.tls!.ca } });
      expect(await secure.ping()).toBe('PONG');
      expect(await testClient({ tls: { ca: server.tls!.ca } }, server.url).ping()).toBe('PONG');
      expect(await server.admin().ping()).toBe('PONG');

      const plain = testClient({ host: server.host, port: server.port });
      await expect(plain.ping()).rejects.toThrow();

      const untrusting = testClient({ host: server.host, port: server.port, tls: {}, lazyConnect: true });
      expect((await connectError(untrusting)).message).toMatch(/certificate/i);
    } finally {
      await server.stop();
    }
  });

  it('restart() keeps the port and the data dir; clients can reconnect', async () => {
    const server = await RedisServerProcess.start();
    try {
      const { port, dir } = server;
      const pidBefore = server.pid;
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.dir).toBe(dir);
      expect(server.pid).not.toBe(pidBefore);
      expect(await testClient({ host: server.host, port }).ping()).toBe('PONG');
      expect(await server.admin().ping()).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('kill() makes client commands fail', async () => {
    const server = await RedisServerProcess.start();
    try {
      const client = testClient({ host: server.host, port: server.port });
      expect(await client.ping()).toBe('PONG');
      await server.kill();
      expect(server.isRunning()).toBe(false);
      await expect(client.ping()).rejects.toThrow();
      const fresh = testClient({ host: server.host, port: server.port, lazyConnect: true });
      expect((await connectError(fresh)).message).toMatch(/ECONNREFUSED/);
    } finally {
      await server.stop();
    }
  });

  it('pause() holds client commands; flushAll() empties the server', async () => {
    const server = await RedisServerProcess.start();
    try {
      const client = testClient({ host: server.host, port: server.port });
      await client.set('k', 'v');
      const started = Date.now(); // before the pause: a stall between the two cannot shorten what is measured
      await server.pause(300, 'WRITE');
      await client.set('k2', 'v2');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290); // Redis's clock and ours round differently
      await server.flushAll();
      expect(await client.dbsize()).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

describe('RedisClusterProcess', () => {
  let cluster: RedisClusterProcess;
  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3 });
  }, 30_000);
  afterAll(() => cluster.stop());

  it('starts 3 masters reporting cluster_state:ok on every node', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(cluster.nodes.map((n) => n.port)).not.toContain(6379);
    for (const node of cluster.processes) {
      expect(String(await node.admin().call('CLUSTER', 'INFO'))).toContain('cluster_state:ok');
    }
    expect(await cluster.masters()).toEqual([...cluster.nodes].sort((a, b) => a.port - b.port));
  });

  it('keeps hash-tagged keys in one slot and serves them through a Cluster client', async () => {
    const dataSlot = await cluster.keySlot('{app_abc}_Data');
    expect(await cluster.keySlot('{app_abc}_Lock')).toBe(dataSlot);
    expect(await cluster.keySlot('other')).not.toBe(dataSlot);

    const client = cluster.client();
    await client.mset('{app_abc}_Data', 'd', '{app_abc}_Lock', 'l');
    expect(await client.mget('{app_abc}_Data', '{app_abc}_Lock')).toEqual(['d', 'l']);
  });

  it("CommandMonitor on a node leaves out the admin Cluster client's commands", async () => {
    const monitors = await Promise.all(cluster.processes.map((node) => CommandMonitor.start(node)));
    try {
      const client = cluster.client();
      await client.set('{app_abc}_Data', 'x');
      await client.get('{app_abc}_Lock');
      await Promise.all(monitors.map((m) => m.settle()));
      expect(monitors.flatMap((m) => m.commands())).toEqual([]);
    } finally {
      await Promise.all(monitors.map((m) => m.stop()));
    }
  });
});

describe('RedisClusterProcess with replicas and a password', () => {
  it('fails a killed master over to its replica', async () => {
    const cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 1, password: 'pw' });
    try {
      expect(cluster.nodes).toHaveLength(6);
      const masters = await cluster.masters();
      expect(masters).toHaveLength(3);

      const client = testClient({ ...cluster.nodes[0], lazyConnect: true });
      expect((await connectError(client)).message).toMatch(/NOAUTH/);

      const victim = cluster.processes.find((p) => p.port === masters[0].port)!;
      await victim.kill();
      const deadline = Date.now() + 10_000;
      let current = await cluster.masters();
      while (current.some((m) => m.port === victim.port) || current.length < 3) {
        if (Date.now() > deadline) throw new Error(`no failover: ${JSON.stringify(current)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
        current = await cluster.masters();
      }
      expect(current).toHaveLength(3);
      expect(current).not.toContainEqual({ host: victim.host, port: victim.port });
    } finally {
      await cluster.stop();
    }
  }, 25_000);
});

describe('CommandMonitor', () => {
  let server: RedisServerProcess;
  let monitor: CommandMonitor;
  let client: Redis;
  beforeAll(async () => {
    server = await RedisServerProcess.start({ password: 'secret' });
    client = new Redis({ ...server.clientOptions(), retryStrategy: () => null });
    client.on('error', () => undefined);
    await client.ping(); // connection handshake (HELLO, CLIENT SETNAME/INFO) happens before the monitor
    monitor = await CommandMonitor.start(server);
  });
  afterAll(async () => {
    await closeClient(client);
    await monitor.stop();
    await server.stop();
  });
  beforeEach(async () => {
    await monitor.settle();
    monitor.reset();
  });

  it('records exactly the top-level commands a client sent, not those of the harness connections', async () => {
    await client.set('a', '1');
    await server.admin().get('a');
    await client.get('a');
    await monitor.settle();
    expect(monitor.commands()).toEqual(['SET', 'GET']);
    expect(monitor.entries()[0]).toMatchObject({ name: 'SET', args: ['set', 'a', '1'], db: 0 });
  });

  it('counts an EVAL whose script calls redis.call twice as one EVAL', async () => {
    await client.eval("redis.call('SET', KEYS[1], 'x'); return redis.call('GET', KEYS[1])", 1, 'k');
    await monitor.settle();
    expect(monitor.commands()).toEqual(['EVAL']);
  });

  it('settle() waits for commands of another connection that already completed', async () => {
    const other = testClient(server.clientOptions());
    await other.ping(); // its handshake and this PING must not be counted: settle, then reset
    await monitor.settle();
    monitor.reset();
    await Promise.all(Array.from({ length: 50 }, (_, i) => other.hset('h', `f${i}`, 'v')));
    await monitor.settle();
    expect(monitor.commands()).toEqual(Array.from({ length: 50 }, () => 'HSET'));
  });

  it('starts while other connections run commands (a MONITOR line may follow its OK in one read)', async () => {
    const busy = testClient(server.clientOptions());
    await busy.ping();
    let running = true;
    const load = (async () => {
      while (running) await Promise.all(Array.from({ length: 20 }, () => busy.ping()));
    })();
    try {
      for (let i = 0; i < 30; i += 1) {
        const started = await CommandMonitor.start(server);
        // It records what runs after start() resolved. (Whether any of the load's PINGs ran between the start
        // and settle()'s marker depends on scheduling, so the check sends one of its own.)
        await busy.ping(`after-start-${i}`);
        await started.settle();
        expect(started.entries().map((c) => c.args)).toContainEqual(['ping', `after-start-${i}`]);
        await started.stop();
      }
    } finally {
      running = false;
      await load;
    }
  }, 30_000);

  it('commandStats/diffStats count calls, including those made inside Lua', async () => {
    const before = await commandStats(server.admin());
    await client.eval("redis.call('SET', KEYS[1], 'x'); return redis.call('GET', KEYS[1])", 1, 'k');
    const after = await commandStats(server.admin());
    expect(diffStats(before, after)).toEqual({ eval: 1, set: 1, get: 1, info: 1 });
  });
});
