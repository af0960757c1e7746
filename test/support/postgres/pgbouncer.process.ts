import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../redis/index.js';

/** Where Debian's pgbouncer package puts it (`.ci/run` installs it). */
const PGBOUNCER = '/usr/sbin/pgbouncer';

/**
 * A private PgBouncer on a free port in front of the machine's PostgreSQL (trust auth, every database, the user
 * `user`), in `mode` (`transaction`: each transaction on any server connection). At most `serverConnections` server
 * connections per database, fewer than the apps' pools open, so transactions of one client move between them.
 * PgBouncer refuses to run as root: as root it runs as `nobody`. Stopped by {@link stop}.
 */
export class PgBouncerProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
    private readonly output: () => string,
  ) {}

  readonly host = '127.0.0.1';

  static async start(options: {
    mode: 'session' | 'transaction';
    serverConnections: number;
    upstream: { host: string; port: number; user: string };
  }): Promise<PgBouncerProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'nss-pgbouncer-'));
    const { host, port: upstreamPort, user } = options.upstream;
    writeFileSync(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${host} port=${upstreamPort}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'auth_type = trust',
        `auth_file = ${join(dir, 'users.txt')}`,
        `pool_mode = ${options.mode}`,
        `default_pool_size = ${options.serverConnections}`,
        // pg's pool sends statement_timeout with the startup packet; PgBouncer refuses unknown startup parameters.
        'ignore_startup_parameters = statement_timeout,extra_float_digits',
        // TCP only: no Unix socket left in /tmp.
        'unix_socket_dir =',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chmodSync(dir, 0o755); // its files readable by nobody
    let output = '';
    const child = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'nobody'] : []), join(dir, 'pgbouncer.ini')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Not installed (ENOENT): reported by listening() with the output, not as an uncaught error.
    child.on('error', (error) => (output += `${PGBOUNCER}: ${error.message}\n`));
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const bouncer = new PgBouncerProcess(child, dir, port, () => output);
    try {
      await bouncer.listening(10_000);
    } catch (error) {
      await bouncer.stop();
      throw error;
    }
    return bouncer;
  }

  /** A connection string for `database` through this PgBouncer. */
  url(database: string, user: string): string {
    return `postgres://${user}@${this.host}:${this.port}/${database}`;
  }

  private async listening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const accepted = await new Promise<boolean>((done) => {
        const socket = connect({ host: this.host, port: this.port });
        socket.once('connect', () => {
          socket.destroy();
          done(true);
        });
        socket.once('error', () => done(false));
      });
      if (accepted) return;
      if (this.child.exitCode !== null || this.child.pid === undefined || Date.now() > deadline) {
        throw new Error(`pgbouncer did not listen on ${this.port}:\n${this.output()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** SIGINT (PgBouncer's fast shutdown), SIGKILL after 5 s; the config folder goes either way. */
  async stop(): Promise<void> {
    if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGINT');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
