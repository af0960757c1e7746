import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Redis, RedisOptions } from 'ioredis';
import { registerForCleanup } from './cleanup.js';
import { freePort } from './free-port.js';
import { closeClient, createHarnessClient } from './harness-connections.js';
import { generateTlsCertificates, type TlsCertificates } from './tls-certificates.js';

/** Where a Redis server listens and how to reach it (what CommandMonitor and clients need). */
export interface RedisEndpoint {
  host: string;
  port: number;
  password?: string;
  /** Present for TLS servers: the CA certificate (PEM) to trust. */
  tls?: { ca: Buffer };
}

export interface RedisServerOptions {
  /** Adds `--requirepass`. */
  password?: string;
  /** Serves TLS only (`--port 0 --tls-port P`) with a CA + certificate generated for this server. */
  tls?: boolean;
  /** Appended to the command line, e.g. `['--maxmemory', '10mb']`. */
  extraArgs?: string[];
  /** A fixed port (default: `freePort()`, with up to 3 attempts if another process grabs it first). */
  port?: number;
  /**
   * Runs a Redis Sentinel instead (`redis-server <conf> --sentinel`) that monitors `master` as `name` (quorum 1; a
   * master is down after 1 s without an answer), so one Sentinel can promote a replica in a test.
   */
  sentinelOf?: { name: string; master: RedisEndpoint };
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_LINES = 40;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/**
 * A private `redis-server` child process (foreground, not daemonized) on 127.0.0.1 and a free port,
 * with no persistence and its own temp dir (removed on stop). Never touches a Redis on 6379.
 *
 * Usage in a spec:
 *
 *   let server: RedisServerProcess;
 *   beforeAll(async () => { server = await RedisServerProcess.start({ password: 's3cret' }); });
 *   afterAll(() => server.stop());
 */
export class RedisServerProcess implements RedisEndpoint {
  readonly host = HOST;
  readonly port: number;
  readonly password?: string;
  readonly tls?: { ca: Buffer };
  /** The server's working dir (`--dir`): nodes.conf, TLS files. Removed on stop. */
  readonly dir: string;

  private child?: ChildProcess;
  private alive = false;
  private exited: Promise<Exit> = Promise.resolve({ code: null, signal: null });
  private readonly outputTail: string[] = [];
  private adminClient?: Redis;
  private stopping?: Promise<void>;
  private readonly unregister: () => void;

  private constructor(
    port: number,
    dir: string,
    private readonly options: RedisServerOptions,
    private readonly certificates?: TlsCertificates,
  ) {
    this.port = port;
    this.dir = dir;
    if (options.password !== undefined) this.password = options.password;
    if (certificates) this.tls = { ca: certificates.ca };
    this.unregister = registerForCleanup(this);
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
    const attempts = options.port === undefined ? 3 : 1;
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      const dir = await mkdtemp(join(tmpdir(), `redis-harness-${port}-`));
      let server: RedisServerProcess | undefined;
      try {
        const certificates = options.tls
          ? await generateTlsCertificates({ dir: join(dir, 'tls') })
          : undefined;
        server = new RedisServerProcess(port, dir, options, certificates);
        await server.launch();
        return server;
      } catch (error) {
        if (server) await server.stop().catch(() => undefined);
        else await rm(dir, { recursive: true, force: true });
        if (attempt < attempts && /address already in use/i.test(String(error))) continue;
        throw error;
      }
    }
  }

  /** `redis://` or `rediss://` URL, with the password when there is one. */
  get url(): string {
    const scheme = this.tls ? 'rediss' : 'redis';
    const auth = this.password !== undefined ? `:${encodeURIComponent(this.password)}@` : '';
    return `${scheme}://${auth}${this.host}:${this.port}`;
  }

  /** The PID of the running redis-server, if it is running. */
  get pid(): number | undefined {
    return this.isRunning() ? this.child?.pid : undefined;
  }

  isRunning(): boolean {
    return this.alive;
  }

  /** ioredis options to reach this server (host, port, password, tls). Spread into `new Redis({...})`. */
  clientOptions(): RedisOptions {
    return {
      host: this.host,
      port: this.port,
      ...(this.password !== undefined ? { password: this.password } : {}),
      ...(this.tls ? { tls: { ca: this.tls.ca } } : {}),
    };
  }

  /** Last lines the server printed (its log goes to stdout), for error messages. */
  output(): string {
    return this.outputTail.join('\n');
  }

  /**
   * A lazily created ioredis client for assertions (closed on stop). It reconnects every 100 ms, so it
   * survives restart(); its commands are left out by CommandMonitor.
   */
  admin(): Redis {
    this.adminClient ??= createHarnessClient(this.clientOptions(), 'admin');
    return this.adminClient;
  }

  /** `CLIENT PAUSE ms mode` through the admin client. */
  async pause(ms: number, mode: 'ALL' | 'WRITE' = 'ALL'): Promise<void> {
    await this.admin().call('CLIENT', 'PAUSE', String(ms), mode);
  }

  /**
   * SIGSTOP: the server stops answering with its connections open, as a hung or half-open Redis does (CLIENT
   * PAUSE still answers QUIT). {@link thaw} resumes it.
   */
  freeze(): void {
    this.child!.kill('SIGSTOP');
  }

  /** SIGCONT after {@link freeze}. */
  thaw(): void {
    this.child!.kill('SIGCONT');
  }

  async flushAll(): Promise<void> {
    await this.admin().flushall();
  }

  /** SIGKILL (an outage: no shutdown, clients see the connection drop). The temp dir is kept. */
  async kill(): Promise<void> {
    if (!this.isRunning()) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Stops (SIGTERM) and starts again on the same port with the same options and dir. */
  async restart(): Promise<void> {
    if (this.stopping) throw new Error(`redis-server on port ${this.port} was stopped; cannot restart`);
    await this.terminate();
    await this.launch();
  }

  /** SIGTERM, SIGKILL after 3 s; closes the admin client and removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await closeClient(this.adminClient);
        await this.terminate();
      } finally {
        await rm(this.dir, { recursive: true, force: true });
        this.unregister();
      }
    })();
    return this.stopping;
  }

  /** Used by the process 'exit' handler only. */
  killSync(): void {
    if (this.isRunning()) this.child!.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private args(): string[] {
    const port = String(this.port);
    const args = ['--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'];
    if (this.certificates) {
      const c = this.certificates;
      args.unshift('--port', '0', '--tls-port', port);
      args.push(
        '--tls-cert-file',
        c.certPath,
        '--tls-key-file',
        c.keyPath,
        '--tls-ca-cert-file',
        c.caCertPath,
      );
      args.push('--tls-auth-clients', 'no');
    } else {
      args.unshift('--port', port);
    }
    if (this.password !== undefined) args.push('--requirepass', this.password);
    args.push(...(this.options.extraArgs ?? []));
    const sentinel = this.options.sentinelOf;
    if (sentinel) {
      // Sentinel rewrites its configuration file: one of its own, in the server's dir.
      const conf = join(this.dir, 'sentinel.conf');
      const { name, master } = sentinel;
      writeFileSync(
        conf,
        [
          `sentinel monitor ${name} ${master.host} ${master.port} 1`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 3000`,
          '',
        ].join('\n'),
      );
      return [conf, '--sentinel', ...args];
    }
    return args;
  }

  private async launch(): Promise<void> {
    this.outputTail.length = 0;
    const [command, args] = withParentDeathSignal('redis-server', this.args());
    const child = spawn(command, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.alive = true;
    this.exited = new Promise<Exit>((resolve) => {
      const exited = (exit: Exit): void => {
        this.alive = false;
        resolve(exit);
      };
      child.once('exit', (code, signal) => exited({ code, signal }));
      child.once('error', (error) => exited({ code: null, signal: null, error }));
    });
    const collect = (chunk: Buffer): void => {
      this.outputTail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.outputTail.length > OUTPUT_TAIL_LINES)
        this.outputTail.splice(0, this.outputTail.length - OUTPUT_TAIL_LINES);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    await this.waitUntilReady();
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let exit: Exit | undefined;
    void this.exited.then((e) => (exit = e));
    while (Date.now() < deadline) {
      if (exit) break;
      if (await this.isServing()) return;
      if (exit) break;
      await sleep(50);
    }
    const what = this.certificates ? `TLS port ${this.port}` : `port ${this.port}`;
    let reason: string;
    if (exit?.error) {
      reason = `could not be spawned (${exit.error.message}; is redis-server installed and on PATH?)`;
    } else if (exit) {
      reason = `exited (code ${exit.code}, signal ${exit.signal}) before it was ready`;
    } else {
      reason = `did not answer within ${START_TIMEOUT_MS / 1000} s`;
      this.child?.kill('SIGKILL');
      await this.exited;
    }
    throw new Error(
      `redis-server on ${what} ${reason}.\n` +
        `Command: redis-server ${this.args()
          .map((a) => (a === '' ? '""' : a))
          .join(' ')}\n` +
        `Output (last lines):\n${this.output() || '(none)'}`,
    );
  }

  /**
   * True once this very process serves requests: AUTH (if needed) + INFO server over a raw socket, and
   * the reported process_id is our child's pid. (A bare PING could be answered by another server that
   * holds the port while ours fails to bind.)
   */
  private isServing(): Promise<boolean> {
    const pid = this.child?.pid;
    return new Promise((resolve) => {
      let received = '';
      const onConnect = (): void => {
        const auth = this.password !== undefined ? resp('AUTH', this.password) : '';
        socket.write(auth + resp('INFO', 'server'));
      };
      const socket: Socket = this.certificates
        ? tlsConnect({ host: this.host, port: this.port, ca: this.certificates.ca }, onConnect)
        : netConnect({ host: this.host, port: this.port }, onConnect);
      const timer = setTimeout(() => done(false), 1000);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(ok);
      };
      socket.on('data', (data: Buffer) => {
        received += data.toString('latin1');
        if (/^-|\r\n-/.test(received)) return done(false); // e.g. -LOADING: try again
        const match = /process_id:(\d+)/.exec(received);
        if (match) done(Number(match[1]) === pid);
      });
      socket.once('error', () => done(false));
      socket.once('close', () => done(false));
      void this.exited.then(() => done(false));
    });
  }

  /** SIGTERM, then SIGKILL after 3 s; resolves once the process is gone. */
  private async terminate(): Promise<void> {
    if (!this.isRunning()) {
      await this.exited;
      return;
    }
    const child = this.child!;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

const SETPRIV = '/usr/bin/setpriv';
const canSetParentDeathSignal = existsSync(SETPRIV);

/**
 * Wraps a command in `setpriv --pdeathsig SIGKILL` (util-linux, on every Debian) so the kernel kills
 * redis-server if the test process dies without cleaning up (Ctrl-C, SIGKILL, a crash). setpriv execs the
 * command: same pid, signals reach redis-server. A process 'exit' handler cannot do this under Jest,
 * whose test code only sees a sandboxed copy of `process`.
 */
function withParentDeathSignal(command: string, args: string[]): [string, string[]] {
  return canSetParentDeathSignal
    ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...args]]
    : [command, args];
}

/** A command in RESP (array of bulk strings). */
function resp(...parts: string[]): string {
  return `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
