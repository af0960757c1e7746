import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { registerForCleanup } from './cleanup.js';
import {
  closeClient,
  createHarnessClient,
  isHarnessAddress,
  isHarnessConnectionName,
} from './harness-connections.js';
import type { RedisEndpoint } from './redis-server.process.js';

/** One command as MONITOR reported it. */
export interface MonitoredCommand {
  /** Upper-case command name, e.g. 'EVALSHA'. */
  name: string;
  /** All arguments as MONITOR printed them, the command name first (AUTH/HELLO secrets are redacted). */
  args: string[];
  /** Client address, e.g. '127.0.0.1:54012'. */
  source: string;
  db: number;
  /** Server time, seconds with microseconds, as printed by MONITOR. */
  time: string;
}

const SETTLE_TIMEOUT_MS = 5000;

/**
 * Records the top-level commands clients send to one Redis server, using MONITOR on a dedicated
 * connection.
 *
 * Left out: commands run by Lua scripts (MONITOR prints them with source `lua`; only the EVAL/EVALSHA/
 * FCALL that ran them counts) and commands of the harness's own connections (the monitor's probe,
 * `RedisServerProcess.admin()`, `RedisClusterProcess.client()`).
 * Included: everything else Redis executed, also a client's connection handshake (HELLO, CLIENT SETNAME,
 * INFO) if it connects while the monitor runs: connect clients first, or `settle()` then `reset()`.
 * Commands Redis refuses before running them (NOAUTH, unknown command, wrong arity) are not shown by
 * MONITOR. A transaction shows as MULTI, the queued commands, EXEC.
 *
 *   const monitor = await CommandMonitor.start(server);
 *   afterAll(() => monitor.stop());
 *   await client.set('a', '1'); await client.get('a');
 *   await monitor.settle();
 *   expect(monitor.commands()).toEqual(['SET', 'GET']);
 */
export class CommandMonitor {
  private recorded: MonitoredCommand[] = [];
  private readonly namedHarnessSources = new Set<string>();
  private readonly settleWaiters = new Map<string, () => void>();
  private readonly unregister: () => void;

  private constructor(
    private readonly probe: Redis,
    private readonly connection: Redis,
  ) {
    connection.on('monitor', (time: string, args: string[], source: string, db: string) =>
      this.onMonitor(time, args, source, db),
    );
    this.unregister = registerForCleanup(this);
  }

  static async start(server: RedisEndpoint): Promise<CommandMonitor> {
    const options = {
      host: server.host,
      port: server.port,
      ...(server.password !== undefined ? { password: server.password } : {}),
      ...(server.tls ? { tls: { ca: server.tls.ca } } : {}),
      maxRetriesPerRequest: 1,
    };
    const probe = createHarnessClient(options, 'monitor-probe');
    let connection: Redis | undefined;
    try {
      // The probe's handshake runs before MONITOR starts, so it is not what the monitor first sees.
      await probe.ping();
      // What `redis.monitor()` does, but keeping the handle so a failed start leaves no reconnecting client.
      const monitorConnection = createHarnessClient({ ...options, monitor: true }, 'monitor');
      connection = monitorConnection;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out after 10 s')), 10_000);
        const onError = (error: Error) => {
          // ioredis switches to monitoring mode a tick after MONITOR's OK; a MONITOR line that came in
          // the same read finds no command waiting and is reported as this error. It is a command
          // another client ran before start() resolved, so nothing the caller records is lost.
          if (error.message.startsWith('Command queue state error')) return;
          clearTimeout(timer);
          monitorConnection.off('error', onError);
          reject(error);
        };
        monitorConnection.once('monitoring', () => {
          clearTimeout(timer);
          monitorConnection.off('error', onError);
          resolve();
        });
        monitorConnection.on('error', onError);
      });
      return new CommandMonitor(probe, monitorConnection);
    } catch (error) {
      await Promise.all([closeClient(connection), closeClient(probe)]);
      throw new Error(
        `CommandMonitor: could not start MONITOR on ${server.host}:${server.port}: ${String(error)}`,
      );
    }
  }

  /** Upper-case names of the recorded commands, in order, e.g. ['EVALSHA', 'HSET']. */
  commands(): string[] {
    return this.recorded.map((c) => c.name);
  }

  /** The recorded commands with their arguments and client address. */
  entries(): MonitoredCommand[] {
    return [...this.recorded];
  }

  /** Forgets what was recorded so far. Call `settle()` first if commands may still be in flight. */
  reset(): void {
    this.recorded = [];
  }

  /**
   * Resolves once the monitor has received every command Redis executed before this call, e.g. those
   * of requests that already completed: sends a unique PING through the probe connection and waits
   * until MONITOR shows it (MONITOR output is in execution order).
   */
  async settle(timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
    const token = `redis-harness-settle-${randomUUID()}`;
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<void>((resolve, reject) => {
      this.settleWaiters.set(token, resolve);
      timer = setTimeout(
        () =>
          reject(
            new Error(`CommandMonitor.settle: MONITOR did not show the marker PING within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      await this.probe.ping(token);
      await seen;
    } finally {
      clearTimeout(timer);
      this.settleWaiters.delete(token);
    }
  }

  /** Closes the monitor and probe connections. Idempotent. */
  async stop(): Promise<void> {
    this.unregister();
    await Promise.all([closeClient(this.connection), closeClient(this.probe)]);
  }

  private onMonitor(time: string, args: string[], source: string, db: string): void {
    const name = (args[0] ?? '').toUpperCase();
    if (name === 'PING' && args.length === 2) {
      const waiter = this.settleWaiters.get(args[1]);
      if (waiter) {
        waiter();
        return;
      }
    }
    if (source === 'lua') return;
    if (name === 'CLIENT' && args[1]?.toUpperCase() === 'SETNAME' && isHarnessConnectionName(args[2])) {
      // A harness connection we did not see connect (e.g. ioredis' cluster refresher): drop its handshake
      // (HELLO/AUTH come before CLIENT SETNAME) and ignore it from now on.
      this.namedHarnessSources.add(source);
      this.recorded = this.recorded.filter((c) => c.source !== source);
    }
    if (isHarnessAddress(source) || this.namedHarnessSources.has(source)) return;
    this.recorded.push({ name, args, source, db: Number(db), time });
  }
}

/**
 * `INFO commandstats` as `{ evalsha: 3, hset: 1, 'client|setname': 2, ... }` (calls per command, all
 * clients since start or CONFIG RESETSTAT). Unlike CommandMonitor this counts the commands Lua scripts
 * run too (an EVAL calling redis.call('SET') counts eval: 1 and set: 1), and the INFO call itself.
 */
export async function commandStats(client: Redis): Promise<Record<string, number>> {
  const info = await client.info('commandstats');
  const stats: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    stats[match[1]] = Number(match[2]);
  }
  return stats;
}

/** The calls made between two `commandStats()` snapshots: `after - before`, non-zero entries only. */
export function diffStats(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const diff: Record<string, number> = {};
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const delta = (after[name] ?? 0) - (before[name] ?? 0);
    if (delta !== 0) diff[name] = delta;
  }
  return diff;
}
