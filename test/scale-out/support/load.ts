import { Agent, request } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CookieJar } from '../../support/cookie-jar.js';
import type { RedisClusterProcess, RedisServerProcess } from '../../support/redis/index.js';

const run = promisify(execFile);

export const SESSION_COOKIE = '.Nest.Session';
/** One key ring for every app of these suites (two instances share sessions only with the same secrets). */
export const SECRETS = ['scale-out-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF'];

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What one HTTP exchange gave: status 0 when it failed at the network level or timed out. */
export interface HttpResult {
  status: number;
  body: string;
  setCookies: string[];
  /** Wall-clock duration of the exchange, in ms. */
  ms: number;
  /** The network error or 'timeout', when status is 0. */
  error?: string;
}

/**
 * A small HTTP client for load loops on loopback: keep-alive sockets of its own (closed by `close()`, so
 * the soak test can count sockets), and every exchange bounded by a timeout (no loop can hang on it).
 */
export class LoopbackClient {
  private readonly agent: Agent;

  constructor(maxSockets = 64) {
    // `timeout` makes the agent honour the server's `Keep-Alive: timeout=5` hint (it then drops an idle
    // socket a second before the server does). Without it, a socket idle for 5 s can be reused at the
    // moment the server closes it: 'socket hang up' on a request the server never saw, the classic
    // keep-alive race, which is the client's transport and not the app under test.
    this.agent = new Agent({ keepAlive: true, maxSockets, timeout: 60_000 });
  }

  send(
    method: 'GET' | 'POST',
    url: string,
    options: { cookie?: string; json?: unknown; timeoutMs?: number } = {},
  ): Promise<HttpResult> {
    const started = performance.now();
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    const headers: Record<string, string> = {};
    if (options.cookie) headers.cookie = options.cookie;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve) => {
      let settled = false;
      const done = (result: Omit<HttpResult, 'ms'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...result, ms: performance.now() - started });
      };
      const req = request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const header = res.headers['set-cookie'];
          done({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            setCookies: header ?? [],
          });
        });
        res.on('error', (error) => done({ status: 0, body: '', setCookies: [], error: error.message }));
      });
      const timer = setTimeout(() => {
        req.destroy();
        done({ status: 0, body: '', setCookies: [], error: 'timeout' });
      }, options.timeoutMs ?? 10_000);
      req.on('error', (error) => done({ status: 0, body: '', setCookies: [], error: error.message }));
      req.end(body);
    });
  }

  /** Destroys every socket of this client. */
  close(): void {
    this.agent.destroy();
  }
}

/** A browser with one session: follows Set-Cookie, remembers what it was told was stored. */
export class SessionClient {
  readonly jar = new CookieJar();
  /** The last count a 2xx /counter answer acknowledged (0: none yet). */
  acknowledged = 0;
  /** Values a 2xx POST /set/:key acknowledged. */
  readonly values = new Map<string, string>();
  /** The last exchanges (`METHOD path -> status body`), for failure messages. */
  readonly history: string[] = [];

  constructor(
    readonly name: string,
    private readonly client: LoopbackClient,
  ) {}

  /** The session key inside the cookie (`<key>.<signature>`), or undefined before the first write. */
  get key(): string | undefined {
    return this.jar.get(SESSION_COOKIE)?.split('.')[0];
  }

  async send(
    method: 'GET' | 'POST',
    base: string,
    path: string,
    options: { json?: unknown; timeoutMs?: number } = {},
  ): Promise<HttpResult> {
    const cookie = this.jar.header();
    const result = await this.client.send(method, base + path, {
      ...options,
      ...(cookie ? { cookie } : {}),
    });
    if (result.status > 0) this.jar.update({ headers: { 'set-cookie': result.setCookies } });
    this.history.push(`${method} ${path} -> ${result.status} ${result.error ?? result.body.slice(0, 80)}`);
    if (this.history.length > 8) this.history.shift();
    return result;
  }
}

/** Tally of HTTP outcomes: status -> count (0: network error or timeout). */
export class Outcomes {
  readonly byStatus = new Map<number, number>();
  readonly samples: string[] = [];

  add(result: HttpResult, what: string): void {
    this.byStatus.set(result.status, (this.byStatus.get(result.status) ?? 0) + 1);
    if ((result.status >= 500 || result.status === 0) && this.samples.length < 10)
      this.samples.push(`${what} -> ${result.status} ${result.error ?? result.body.slice(0, 200)}`);
  }

  count(predicate: (status: number) => boolean): number {
    let total = 0;
    for (const [status, n] of this.byStatus) if (predicate(status)) total += n;
    return total;
  }

  get total(): number {
    return this.count(() => true);
  }

  summary(): string {
    return [...this.byStatus]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}: ${n}`)
      .join(', ');
  }
}

/** The session keys' Redis hash: `{<app>_<key>}_Data`. */
export function dataKey(app: string, sessionKey: string): string {
  return `{${app}_${sessionKey}}_Data`;
}

export function lockKey(app: string, sessionKey: string): string {
  return `{${app}_${sessionKey}}_Lock`;
}

/** Node id, address and slot ranges of every master, from CLUSTER NODES of a running node. */
export interface MasterView {
  id: string;
  port: number;
  slots: [number, number][];
}

export async function clusterMasters(
  cluster: RedisClusterProcess,
  /** The node to ask (default: the first running one; a frozen node counts as running, and would not answer). */
  via?: RedisServerProcess,
): Promise<MasterView[]> {
  const node = via ?? cluster.processes.find((p) => p.isRunning());
  if (!node) throw new Error('no cluster node is running');
  const text = String(await node.admin().call('CLUSTER', 'NODES'));
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.trim().split(' '))
    .filter(([, , flags]) => flags.split(',').includes('master') && !/fail/.test(flags))
    .map(([id, address, , , , , , , ...slots]) => ({
      id,
      port: Number(address.split('@')[0].split(':').pop()),
      slots: slots
        .filter((s) => !s.startsWith('['))
        .map((s) => {
          const [from, to = from] = s.split('-').map(Number);
          return [from, to] as [number, number];
        }),
    }))
    .sort((a, b) => a.port - b.port);
}

export function ownsSlot(master: MasterView, slot: number): boolean {
  return master.slots.some(([from, to]) => slot >= from && slot <= to);
}

export function slotCount(master: MasterView): number {
  return master.slots.reduce((sum, [from, to]) => sum + to - from + 1, 0);
}

export function processOf(cluster: RedisClusterProcess, port: number): RedisServerProcess {
  const process = cluster.processes.find((p) => p.port === port);
  if (!process) throw new Error(`no cluster process on port ${port}`);
  return process;
}

/**
 * Until every running node reports the same slot ownership (cluster config propagates over the bus:
 * `redis-cli --cluster reshard` refuses to start while "Nodes don't agree about configuration").
 */
export async function waitForSlotAgreement(cluster: RedisClusterProcess, timeoutMs = 10_000): Promise<void> {
  const view = async (node: RedisServerProcess) => {
    const text = String(await node.admin().call('CLUSTER', 'NODES'));
    return text
      .split('\n')
      .map((line) => line.trim().split(' '))
      .filter((fields) => fields.length > 8)
      .map(([id, , , , , , , , ...slots]) => `${id}:${slots.filter((s) => !s.startsWith('[')).join(',')}`)
      .sort()
      .join(' ');
  };
  const agreed = await waitUntil(
    async () => {
      const views = await Promise.all(cluster.processes.filter((p) => p.isRunning()).map(view));
      return views.every((v) => v === views[0]);
    },
    timeoutMs,
    100,
  );
  if (!agreed) throw new Error(`cluster nodes did not agree on slot ownership within ${timeoutMs} ms`);
}

/**
 * Until every master's replica acknowledges writes (a write, then WAIT 1, on each master). A replica's
 * link is up before that: after a diskless sync the master streams commands to it (WAIT's GETACK
 * included) only once it sent its first periodic ACK, up to a second later; a WAIT before that times out.
 */
export async function waitForReplicaAcks(cluster: RedisClusterProcess, timeoutMs = 5_000): Promise<void> {
  const masters = await clusterMasters(cluster);
  for (const master of masters) {
    let key: string | undefined;
    for (let i = 0; i < 1_000 && !key; i++)
      if (ownsSlot(master, await cluster.keySlot(`replica-probe-${i}`))) key = `replica-probe-${i}`;
    const admin = processOf(cluster, master.port).admin();
    await admin.set(key!, '1');
    const acknowledged = Number(await admin.call('WAIT', '1', String(timeoutMs)));
    await admin.del(key!);
    if (acknowledged < 1)
      throw new Error(`the replica of ${master.port} did not acknowledge within ${timeoutMs} ms`);
  }
}

/** `redis-cli --cluster <args>`, bounded in time; returns stdout. */
export async function redisCliCluster(args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await run('redis-cli', ['--cluster', ...args], {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `redis-cli --cluster ${args.join(' ')} failed: ${String(error)}\n${stdout.slice(-2000)}\n${stderr}`,
    );
  }
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passed; returns whether it did. */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return check();
}

/** Splits `items` into `n` interleaved groups (worker i takes items i, i+n, ...). */
export function partition<T>(items: T[], n: number): T[][] {
  return Array.from({ length: n }, (_, i) => items.filter((_, j) => j % n === i));
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `INFO errorstats` summed over the running nodes: `{ MOVED: n, ASK: n, ... }` (replies Redis gave). */
export async function errorStats(cluster: RedisClusterProcess): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const node of cluster.processes.filter((p) => p.isRunning())) {
    const info = await node.admin().info('errorstats');
    for (const match of info.matchAll(/^errorstat_([^:]+):count=(\d+)/gm))
      totals[match[1]] = (totals[match[1]] ?? 0) + Number(match[2]);
  }
  return totals;
}
