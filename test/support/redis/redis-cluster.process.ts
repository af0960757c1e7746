import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, type ClusterOptions } from 'ioredis';
import { registerForCleanup } from './cleanup.js';
import { freePort } from './free-port.js';
import { HARNESS_CONNECTION_NAME, closeClient, trackHarnessConnection } from './harness-connections.js';
import { RedisServerProcess } from './redis-server.process.js';

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** Number of masters (default 3, the minimum `redis-cli --cluster create` accepts). */
  masters?: number;
  /** Replicas per master (default 0). */
  replicasPerMaster?: number;
  /** `--requirepass` and `--masterauth` on every node. */
  password?: string;
}

export interface ClusterNodeAddress {
  host: string;
  port: number;
}

const HOST = '127.0.0.1';
const CREATE_TIMEOUT_MS = 30_000;
const STATE_OK_TIMEOUT_MS = 20_000;
const PORT_ATTEMPTS = 3;

/**
 * A private Redis Cluster: `masters * (1 + replicasPerMaster)` cluster-enabled redis-server children on
 * 127.0.0.1 (own temp dir each, ports whose cluster bus port + 10000 is free too), joined with
 * `redis-cli --cluster create`, and ready (`cluster_state:ok` on every node) when start() resolves.
 *
 *   let cluster: RedisClusterProcess;
 *   beforeAll(async () => { cluster = await RedisClusterProcess.start(); }, 30_000);
 *   afterAll(() => cluster.stop());
 */
export class RedisClusterProcess {
  /** Every node, in creation order (with replicas: the first `masters` are the initial masters). */
  readonly nodes: ClusterNodeAddress[];
  readonly password?: string;
  private clusterClient?: Cluster;
  private stopping?: Promise<void>;
  private readonly unregister: () => void;

  private constructor(
    /** One handle per node, same order as `nodes`: `processes[0].kill()` takes a node down. */
    readonly processes: RedisServerProcess[],
    password: string | undefined,
  ) {
    this.nodes = processes.map((p) => ({ host: p.host, port: p.port }));
    if (password !== undefined) this.password = password;
    this.unregister = registerForCleanup(this);
  }

  static async start(options: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 0;
    if (masters < 3)
      throw new Error(`RedisClusterProcess: redis-cli needs at least 3 masters, got ${masters}`);
    const { password } = options;
    const extraArgs = [
      '--cluster-enabled',
      'yes',
      // Relative to --dir: redis-server chdirs to its own temp dir, so this is <dir>/nodes.conf.
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
      // Redis 7 defaults to a diskless full sync delayed by 5 s: a replica would stay unsynced (and could
      // not fail over) for the first seconds. Start the sync at once.
      '--repl-diskless-sync-delay',
      '0',
      ...(password !== undefined ? ['--masterauth', password] : []),
    ];
    const results = await Promise.allSettled(
      Array.from({ length: masters * (1 + replicas) }, () => startNode(password, extraArgs)),
    );
    const processes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(processes.map((p) => p.stop()));
      throw failed.reason;
    }

    const cluster = new RedisClusterProcess(processes, password);
    try {
      await cluster.create(replicas);
      await cluster.waitUntilStateOk(masters);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Current masters (not failed or failing) according to CLUSTER NODES of a running node, sorted by port. */
  async masters(): Promise<ClusterNodeAddress[]> {
    const text = String(await this.anyRunningNode().admin().call('CLUSTER', 'NODES'));
    return parseClusterNodes(text)
      .filter((n) => n.flags.includes('master') && !n.flags.some((f) => UNHEALTHY.has(f)))
      .map(({ host, port }) => ({ host, port }))
      .sort((a, b) => a.port - b.port);
  }

  /** ioredis options for a test's own Cluster client: `new Cluster(cluster.nodes, cluster.clusterOptions())`. */
  clusterOptions(): ClusterOptions {
    return this.password !== undefined ? { redisOptions: { password: this.password } } : {};
  }

  /** A lazily created admin Cluster client (closed on stop); CommandMonitor leaves its commands out. */
  client(): Cluster {
    if (!this.clusterClient) {
      const client = new Cluster(this.nodes, {
        clusterRetryStrategy: () => 100,
        redisOptions: {
          connectionName: `${HARNESS_CONNECTION_NAME}:cluster`,
          disconnectTimeout: 100,
          ...(this.password !== undefined ? { password: this.password } : {}),
        },
      });
      client.on('error', () => undefined);
      client.on('node error', () => undefined);
      client.on('+node', trackHarnessConnection);
      this.clusterClient = client;
    }
    return this.clusterClient;
  }

  /** CLUSTER KEYSLOT, asked of a running node. */
  async keySlot(key: string): Promise<number> {
    return Number(await this.anyRunningNode().admin().call('CLUSTER', 'KEYSLOT', key));
  }

  /** Closes the admin client and stops every node (temp dirs removed). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await closeClient(this.clusterClient);
      try {
        await Promise.all(this.processes.map((p) => p.stop()));
      } finally {
        this.unregister();
      }
    })();
    return this.stopping;
  }

  private anyRunningNode(): RedisServerProcess {
    const node = this.processes.find((p) => p.isRunning());
    if (!node) throw new Error('RedisClusterProcess: no node is running');
    return node;
  }

  private async create(replicas: number): Promise<void> {
    const args = [
      '--cluster',
      'create',
      ...this.nodes.map((n) => `${n.host}:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
      ...(this.password !== undefined ? ['-a', this.password, '--no-auth-warning'] : []),
    ];
    try {
      await run('redis-cli', args, { timeout: CREATE_TIMEOUT_MS });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      const message = `RedisClusterProcess: redis-cli ${args.join(' ')} failed: ${String(error)}\n${stdout}\n${stderr}`;
      throw new Error(this.password ? message.split(this.password).join('***') : message);
    }
  }

  /**
   * Until every node reports cluster_state:ok, sees all nodes connected in their final roles (so that
   * masters() is right at once), and every replica has synced with its master (so it can fail over).
   */
  private async waitUntilStateOk(masters: number): Promise<void> {
    const deadline = Date.now() + STATE_OK_TIMEOUT_MS;
    const expected = { nodes: this.processes.length, masters };
    let states: string[] = [];
    while (Date.now() < deadline) {
      states = await Promise.all(this.processes.map((p) => nodeState(p, expected)));
      if (states.every((s) => s === 'ok')) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const report = this.processes.map((p, i) => `  ${p.port}: ${states[i]}`).join('\n');
    throw new Error(
      `RedisClusterProcess: cluster not ready within ${STATE_OK_TIMEOUT_MS / 1000} s\n${report}`,
    );
  }
}

/** 'ok', or what is still missing on this node. */
async function nodeState(
  node: RedisServerProcess,
  expected: { nodes: number; masters: number },
): Promise<string> {
  try {
    const info = String(await node.admin().call('CLUSTER', 'INFO'));
    const state = /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown';
    if (state !== 'ok') return `cluster_state:${state}`;

    const view = parseClusterNodes(String(await node.admin().call('CLUSTER', 'NODES')));
    const connected = view.filter(
      (n) => n.linkState === 'connected' && !n.flags.some((f) => UNHEALTHY.has(f)),
    );
    const masters = connected.filter((n) => n.flags.includes('master') && n.slots > 0).length;
    const replicas = connected.filter((n) => n.flags.includes('slave')).length;
    if (
      connected.length !== expected.nodes ||
      masters !== expected.masters ||
      replicas !== expected.nodes - masters
    ) {
      return `sees ${connected.length}/${expected.nodes} nodes connected, ${masters} masters with slots, ${replicas} replicas`;
    }

    const replication = await node.admin().info('replication');
    if (/^role:slave/m.test(replication)) {
      const link = /^master_link_status:(\w+)/m.exec(replication)?.[1] ?? 'unknown';
      if (link !== 'up') return `replica with master_link_status:${link}`;
    }
    return 'ok';
  } catch (error) {
    return `error: ${String(error)}`;
  }
}

const UNHEALTHY = new Set(['fail', 'fail?', 'handshake', 'noaddr']);

async function startNode(password: string | undefined, extraArgs: string[]): Promise<RedisServerProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort({ withClusterBus: true });
    try {
      return await RedisServerProcess.start({
        port,
        extraArgs,
        ...(password !== undefined ? { password } : {}),
      });
    } catch (error) {
      if (attempt < PORT_ATTEMPTS && /address already in use/i.test(String(error))) continue;
      throw error;
    }
  }
}

interface ClusterNodeLine {
  host: string;
  port: number;
  flags: string[];
  linkState: string;
  /** Number of slot ranges (or single slots) the node serves. */
  slots: number;
}

/** Parses CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [, address = '', flags = '', , , , , linkState = '', ...slots] = line.trim().split(' ');
      const hostPort = address.split('@')[0];
      const colon = hostPort.lastIndexOf(':');
      return {
        host: hostPort.slice(0, colon) || HOST,
        port: Number(hostPort.slice(colon + 1)),
        flags: flags.split(','),
        linkState,
        slots: slots.filter((s) => !s.startsWith('[')).length,
      };
    });
}
