// Private redis-server processes for the benchmark (a standalone server and a 3-master cluster) on free
// ports, with no persistence, plus the few admin queries the bench needs (INFO, MEMORY USAGE, MONITOR).
// A simpler copy of test/support/redis/*.ts in plain JavaScript, so the bench needs no build step.
import { execFile, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { HOST, freePort, sleep, track } from './util.mjs';

const run = promisify(execFile);
const SETPRIV = '/usr/bin/setpriv';
const START_TIMEOUT_MS = 10_000;

/** One redis-server child (foreground) on 127.0.0.1, killed by the kernel if the bench dies (setpriv). */
export class RedisServer {
  static async start({ extraArgs = [], withBus = false } = {}) {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort({ withBus });
      const dir = await mkdtemp(join(tmpdir(), `bench-redis-${port}-`));
      const server = new RedisServer(port, dir, extraArgs);
      try {
        await server.launch();
        return server;
      } catch (error) {
        await server.stop();
        if (attempt < 3 && /address already in use/i.test(String(error))) continue;
        throw error;
      }
    }
  }

  constructor(port, dir, extraArgs) {
    this.host = HOST;
    this.port = port;
    this.dir = dir;
    this.extraArgs = extraArgs;
    this.output = [];
    this.untrack = track(this);
  }

  get url() {
    return `redis://${this.host}:${this.port}`;
  }

  args() {
    return [
      '--port',
      String(this.port),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      this.dir,
      '--daemonize',
      'no',
      ...this.extraArgs,
    ];
  }

  async launch() {
    const [command, args] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', 'redis-server', ...this.args()]]
      : ['redis-server', this.args()];
    const child = spawn(command, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    let exit;
    void this.exited.then((e) => (exit = e));
    const collect = (chunk) => {
      this.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.output.length > 40) this.output.splice(0, this.output.length - 40);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);

    this.admin = new Redis({
      host: HOST,
      port: this.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      connectionName: 'bench-admin',
      retryStrategy: () => 50,
    });
    this.admin.on('error', () => undefined);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline && !exit) {
      try {
        if (this.admin.status === 'wait') await this.admin.connect();
        const info = await this.admin.info('server');
        if (Number(/process_id:(\d+)/.exec(info)?.[1]) === child.pid) return;
      } catch {
        // not ready yet
      }
      await sleep(50);
    }
    const reason = exit?.error
      ? `could not be spawned (${exit.error.message}; is redis-server installed?)`
      : exit
        ? `exited (code ${exit.code}, signal ${exit.signal})`
        : `did not answer within ${START_TIMEOUT_MS / 1000} s`;
    throw new Error(`redis-server on port ${this.port} ${reason}.\n${this.output.join('\n')}`);
  }

  async version() {
    return /redis_version:(\S+)/.exec(await this.admin.info('server'))?.[1] ?? 'unknown';
  }

  /** Stops (SIGTERM, SIGKILL after 3 s), closes the admin client, removes the dir. Idempotent. */
  stop() {
    this.stopping ??= (async () => {
      this.admin?.disconnect();
      if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
        await this.exited;
        clearTimeout(timer);
      }
      await rm(this.dir, { recursive: true, force: true });
      this.untrack();
    })();
    return this.stopping;
  }

  killSync() {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A local Redis Cluster of `masters` cluster-enabled servers joined by `redis-cli --cluster create`. */
export class RedisCluster {
  static async start(masters = 3) {
    const extraArgs = [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
    ];
    const results = await Promise.allSettled(
      Array.from({ length: masters }, () => RedisServer.start({ extraArgs, withBus: true })),
    );
    const nodes = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const cluster = new RedisCluster(nodes);
    const failed = results.find((r) => r.status === 'rejected');
    try {
      if (failed) throw failed.reason;
      const addresses = nodes.map((n) => `${HOST}:${n.port}`);
      await run(
        'redis-cli',
        ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
        { timeout: 30_000 },
      );
      const deadline = Date.now() + 20_000;
      for (;;) {
        const infos = await Promise.all(nodes.map((n) => n.admin.call('CLUSTER', 'INFO')));
        if (
          infos.every(
            (info) => /cluster_state:ok/.test(String(info)) && /cluster_known_nodes:3/.test(String(info)),
          )
        )
          break;
        if (Date.now() > deadline) throw new Error(`cluster not ready within 20 s:\n${infos.join('\n')}`);
        await sleep(100);
      }
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  constructor(nodes) {
    this.nodes = nodes;
  }

  get clusterNodes() {
    return this.nodes.map((n) => `${n.host}:${n.port}`);
  }

  stop() {
    return Promise.all(this.nodes.map((n) => n.stop())).then(() => undefined);
  }
}

/** INFO commandstats of one or more servers, summed: { evalsha: calls, ... } (subcommands as `config|get`). */
export async function commandStats(servers) {
  const total = {};
  for (const server of servers) {
    const text = await server.admin.info('commandstats');
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      total[match[1]] = (total[match[1]] ?? 0) + Number(match[2]);
    }
  }
  return total;
}

/** `after - before` per command, leaving out the bench's own INFO calls. */
export function commandDelta(before, after) {
  const delta = {};
  for (const [name, calls] of Object.entries(after)) {
    if (name === 'info') continue;
    const d = calls - (before[name] ?? 0);
    if (d > 0) delta[name] = d;
  }
  return delta;
}

/**
 * Starts MONITOR on every server and counts the commands that clients sent (top-level: the round
 * trips) apart from those run inside Lua scripts (MONITOR tags them `[0 lua]`).
 * Returns `stop()`, resolving to { topLevel: {cmd: n}, inScripts: {cmd: n} }.
 */
export async function monitorCommands(servers) {
  const counts = { topLevel: {}, inScripts: {} };
  const monitors = [];
  for (const server of servers) {
    const client = new Redis({
      host: server.host,
      port: server.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    client.on('error', () => undefined);
    await client.connect();
    const monitor = await client.monitor();
    monitor.on('monitor', (_time, args, source) => {
      const name = String(args[0]).toLowerCase();
      const bucket = source === 'lua' ? counts.inScripts : counts.topLevel;
      bucket[name] = (bucket[name] ?? 0) + 1;
    });
    monitors.push(client, monitor);
  }
  return {
    async stop() {
      await sleep(200); // let MONITOR lines in flight arrive
      for (const m of monitors) m.disconnect();
      return counts;
    },
  };
}

/** Keys matching `pattern` (SCAN), at most `limit`. */
export async function scanKeys(server, pattern, limit = 50) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await server.admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0' && keys.length < limit);
  return keys.slice(0, limit);
}
