import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../../support/redis/index.js';

const run = promisify(execFile);

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const LIBRARY = join(ROOT, 'libs/session-state');
const TSC = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');

/**
 * The environment of a user's shell: none of the variables that `npm test` and Jest set (npm_config_*
 * would point nested npm calls at this workspace; NODE_OPTIONS turns on Jest's VM modules).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_|^NODE_OPTIONS$|^JEST_|^INIT_CWD$/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

async function npm(cwd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('npm', [...args, '--no-audit', '--no-fund'], {
      cwd,
      env: userEnv(),
      maxBuffer: 32 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

/** A temporary folder outside the workspace, so nothing resolves through the workspace's node_modules. */
export function scratchDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `nss-${label}-`));
}

/** `npm pack` of the library as a user would get it from the registry (its prepack builds dist/). */
export async function packLibrary(destination: string): Promise<string> {
  const stdout = await npm(LIBRARY, ['pack', '--pack-destination', destination, '--json']);
  const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[];
  return join(destination, filename);
}

/** The files in a tarball, as `npm pack --dry-run` would list them (without the `package/` prefix). */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['tzf', tarball]);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.replace(/^package\//, ''));
}

/** The first ```ts block under `## <heading>` in README.md, as a user would copy it. */
export function readmeBlock(heading: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = new RegExp(`^## ${heading}\\n([\\s\\S]*?)(?=^## |(?![\\s\\S]))`, 'm').exec(readme)?.[1];
  const block = section && /^```ts\n([\s\S]*?)^```/m.exec(section)?.[1];
  if (!block) throw new Error(`README.md has no \`\`\`ts block under "## ${heading}"`);
  return block;
}

/**
 * The lowest version the package's peer range for `peer` admits (`^5.2.5 || ^6.0.0` gives `5.2.5`): what an app
 * with an older lock file may run, so the package must run on it.
 */
export function lowestAdmitted(peer: string): string {
  const manifest = JSON.parse(readFileSync(join(LIBRARY, 'package.json'), 'utf8')) as {
    peerDependencies: Record<string, string>;
  };
  const range = manifest.peerDependencies[peer];
  const versions = range.split('||').map((part) => {
    const version = /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(part);
    if (!version) throw new Error(`peerDependencies.${peer}: "${part.trim()}" is not ^major.minor.patch`);
    return version.slice(1).map(Number);
  });
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  return versions[0].join('.');
}

export type ModuleSystem = 'esm' | 'cjs';

/**
 * A fresh Nest app as `nest new` makes one (the Nest packages of one major, @types/node), then the
 * README's install line: `npm install nest-session-state`, here with the packed tarball, and `extraPackages`
 * (`ioredis@6`; npm flags such as `--legacy-peer-deps` too) as the user would add them.
 */
export class ConsumerApp {
  private readonly projects: string[] = [];

  private constructor(readonly dir: string) {}

  static async create(nestMajor: number, tarball: string, ...extraPackages: string[]): Promise<ConsumerApp> {
    const dir = scratchDir(`nest${nestMajor}`);
    const nest = `^${nestMajor}.0.0`;
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: `consumer-nest${nestMajor}`,
        private: true,
        dependencies: {
          '@nestjs/common': nest,
          '@nestjs/core': nest,
          '@nestjs/platform-express': nest,
          'reflect-metadata': '^0.2.0',
          rxjs: '^7.8.0',
        },
        devDependencies: { '@types/node': '^20.19.0' },
      }),
    );
    // One install resolves the same tree as `npm install` then `npm install <tarball>` (what `nest new` and the
    // README's line do), in half the time. --prefer-offline: package metadata fetched once in this run is reused
    // instead of revalidated against the registry for every app (most of an install's wall time here).
    try {
      await npm(dir, ['install', '--prefer-offline', tarball, ...extraPackages]);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true }); // a refused install leaves nothing to inspect but its message
      throw error;
    }
    return new ConsumerApp(dir);
  }

  /**
   * Writes `source` as `<name>/main.ts` of a folder whose package.json makes it an ES module or a
   * CommonJS module, for {@link compile}. Returns the folder.
   */
  addProject(name: string, system: ModuleSystem, source: string): string {
    const project = join(this.dir, name);
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, 'main.ts'), source);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ type: system === 'esm' ? 'module' : 'commonjs' }),
    );
    this.projects.push(name);
    return project;
  }

  /**
   * Compiles every added project in one tsc run (each `main.js` beside its `main.ts`, so the folder's
   * package.json decides its module system): strict with `exactOptionalPropertyTypes`, `skipLibCheck: false`, so every declaration file
   * the package ships is checked. `declarations` are extra .d.ts files a user would add.
   */
  async compile(declarations: Record<string, string> = {}): Promise<void> {
    for (const [file, text] of Object.entries(declarations)) writeFileSync(join(this.dir, file), text);
    writeFileSync(
      join(this.dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'ES2022',
          strict: true,
          // Not part of strict, but projects that turn it on check the package's declarations with it too.
          exactOptionalPropertyTypes: true,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: [...this.projects.map((name) => `${name}/main.ts`), ...Object.keys(declarations)],
      }),
    );
    try {
      await run(process.execPath, [TSC, '-p', this.dir], { cwd: this.dir, env: userEnv() });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`tsc failed in ${this.dir}:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  }

  /**
   * Runs `node <args>` in `cwd` (a folder of this app; the app's own by default) with a user's environment (no
   * NODE_OPTIONS: no VM modules for Jest), resolving with what it printed; a failure carries its output.
   */
  async node(args: string[], cwd = this.dir): Promise<string> {
    try {
      const { stdout, stderr } = await run(process.execPath, args, {
        cwd,
        env: userEnv({ NO_COLOR: '1' }),
        maxBuffer: 8 * 1024 * 1024,
      });
      return stdout + stderr;
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`node ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A compiled consumer app started with `node main.js` on a free port. */
export class RunningApp {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }

  /** Everything the app printed so far. */
  get log(): string {
    return this.output;
  }

  /** GETs `path` `times` times with one cookie jar; a failure carries what the app printed and its exit. */
  async getWithCookies(path: string, times: number): Promise<unknown[]> {
    try {
      return await getWithCookies(`${this.url}${path}`, times);
    } catch (error) {
      const exit = this.child.exitCode ?? this.child.signalCode ?? 'still running';
      throw new Error(
        `GET ${path} failed (${String(error)}; app: ${exit}). The app printed:\n${this.output}`,
        {
          cause: error,
        },
      );
    }
  }

  static async start(project: string, env: Record<string, string> = {}): Promise<RunningApp> {
    const port = await freePort();
    const child = spawn(process.execPath, ['main.js'], {
      cwd: project,
      env: userEnv({ PORT: String(port), NO_COLOR: '1', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new RunningApp(child, `http://127.0.0.1:${port}`);
    // Nest logs "successfully started" at the end of init(), before listen() binds the port.
    await app.waitFor(/successfully started/, 20_000);
    await app.waitForPort(port, 20_000);
    return app;
  }

  /** Runs `node main.js` expecting it to fail at startup; resolves with its output and exit code. */
  static async failToStart(
    project: string,
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; output: string }> {
    const port = await freePort();
    const child = spawn(process.execPath, ['main.js'], {
      cwd: project,
      env: userEnv({ PORT: String(port), NO_COLOR: '1', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
    clearTimeout(timer);
    return { code, output };
  }

  /** Resolves once the app accepts TCP connections on `port`. */
  private async waitForPort(port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const accepted = await new Promise<boolean>((done) => {
        const socket = connect({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          done(true);
        });
        socket.once('error', () => done(false));
      });
      if (accepted) return;
      if (this.child.exitCode !== null)
        throw new Error(`app exited (${this.child.exitCode}):\n${this.output}`);
      if (Date.now() > deadline)
        throw new Error(`port ${port} not accepting after ${timeoutMs} ms:\n${this.output}`);
      await new Promise((done) => setTimeout(done, 25));
    }
  }

  private waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
    return new Promise((done, fail) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        clearInterval(poll);
        this.child.off('exit', exited);
        if (error) fail(error);
        else done();
      };
      const timer = setTimeout(
        () => finish(new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      );
      const poll = setInterval(() => pattern.test(this.output) && finish(), 25);
      const exited = (code: number | null) => finish(new Error(`app exited (${code}):\n${this.output}`));
      this.child.once('exit', exited);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((done) => this.child.once('exit', done));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** GETs `path` twice or more with one cookie jar (the session cookie), returning the JSON bodies. */
export async function getWithCookies(url: string, times: number): Promise<unknown[]> {
  let cookie = '';
  const bodies: unknown[] = [];
  for (let i = 0; i < times; i++) {
    const response = await fetch(url, { headers: cookie ? { cookie } : {} });
    const setCookie = response.headers.getSetCookie().map((c) => c.split(';')[0]);
    if (setCookie.length > 0) cookie = setCookie.join('; ');
    bodies.push(await response.json());
  }
  return bodies;
}
