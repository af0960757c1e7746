import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from '../../support/redis/index.js';
import { REPO_ROOT, SAMPLE_APP_MAIN } from './build.js';
import type { SampleAppPlatform } from './platforms.js';

/** The environment variables of the sample app's contract (DESIGN.md, "Sample app"). */
export interface SampleAppEnv {
  REDIS_URL?: string;
  REDIS_CLUSTER_NODES?: string;
  /** `postgres://...`: sessions in PostgreSQL. */
  DATABASE_URL?: string;
  SESSION_SECRETS?: string;
  /** `cookie` or `session` (anything else must make the app fail at startup). */
  TEMPDATA_PROVIDER?: string;
  APP_NAME?: string;
  SESSION_IDLE_TIMEOUT?: string;
  /** `express` (the app's default) or `fastify`. */
  HTTP_ADAPTER?: SampleAppPlatform;
  /** Jest's `test` by default (inherited), which some libraries read (Apollo hides stack traces under it). */
  NODE_ENV?: string;
}

export interface SampleAppOptions {
  env?: SampleAppEnv;
  /** Default: a free port. */
  port?: number;
}

const CONTRACT_VARIABLES = [
  'PORT',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'DATABASE_URL',
  'SESSION_SECRETS',
  'TEMPDATA_PROVIDER',
  'APP_NAME',
  'SESSION_IDLE_TIMEOUT',
  'HTTP_ADAPTER',
];
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL = 60;
const SETPRIV = '/usr/bin/setpriv';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/**
 * `node sample-app/dist/main.js` as a child process on 127.0.0.1 and a free port (build it first with
 * `ensureBuilt()`). Only the variables given in `env` reach it: the contract's variables are removed
 * from the inherited environment, so a REDIS_URL of the machine never leaks into a test.
 * Runs under `setpriv --pdeathsig SIGKILL` when available, so it dies with the test process.
 */
export class SampleAppProcess {
  readonly port: number;
  private child?: ChildProcess;
  private exited: Promise<Exit> = Promise.resolve({ code: null, signal: null });
  private running = false;
  private readonly tail: string[] = [];

  private constructor(
    port: number,
    private readonly env: SampleAppEnv,
  ) {
    this.port = port;
  }

  /** Starts the app and resolves once it answers HTTP requests. */
  static async start(options: SampleAppOptions = {}): Promise<SampleAppProcess> {
    if (!existsSync(SAMPLE_APP_MAIN)) {
      throw new Error(`${SAMPLE_APP_MAIN} is missing: call ensureBuilt() in beforeAll first`);
    }
    const app = new SampleAppProcess(options.port ?? (await freePort()), options.env ?? {});
    await app.launch();
    return app;
  }

  /** `http://127.0.0.1:<port>` (no trailing slash). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  isRunning(): boolean {
    return this.running;
  }

  /** What the app printed last (stdout and stderr), for failure messages. */
  output(): string {
    return this.tail.join('\n');
  }

  /** SIGKILL: a crash, no shutdown hooks. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Starts again on the same port with the same environment (after {@link kill} or {@link stop}). */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** SIGTERM (Nest's shutdown hooks run), SIGKILL after 5 s. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const child = this.child!;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of CONTRACT_VARIABLES) delete env[name];
    delete env.NODE_OPTIONS; // Jest's --experimental-vm-modules
    for (const [name, value] of Object.entries(this.env))
      if (value !== undefined) env[name] = value as string;
    env.PORT = String(this.port);
    env.NO_COLOR = '1';
    return env;
  }

  private async launch(): Promise<void> {
    this.tail.length = 0;
    const [command, args] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', process.execPath, SAMPLE_APP_MAIN]]
      : [process.execPath, [SAMPLE_APP_MAIN]];
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: this.childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.running = true;
    this.exited = new Promise<Exit>((resolve) => {
      const done = (exit: Exit): void => {
        this.running = false;
        resolve(exit);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (error) => done({ code: null, signal: null, error }));
    });
    const collect = (chunk: Buffer): void => {
      this.tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.tail.length > OUTPUT_TAIL) this.tail.splice(0, this.tail.length - OUTPUT_TAIL);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    await this.waitUntilServing();
  }

  private async waitUntilServing(): Promise<void> {
    let exit: Exit | undefined;
    void this.exited.then((e) => (exit = e));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline && !exit) {
      try {
        const res = await fetch(`${this.url}/about`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const reason = exit
      ? `exited (${exit.error?.message ?? `code ${exit.code}, signal ${exit.signal}`}) before it answered`
      : `did not answer GET /about within ${START_TIMEOUT_MS / 1000} s`;
    await this.kill();
    throw new Error(
      `sample app on port ${this.port} ${reason}.\nOutput (last lines):\n${this.output() || '(none)'}`,
    );
  }
}
