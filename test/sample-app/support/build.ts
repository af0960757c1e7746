import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/sample-app/support/build.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The compiled sample app, started by the tests as `node sample-app/dist/main.js`. */
export const SAMPLE_APP_MAIN = join(REPO_ROOT, 'sample-app/dist/main.js');

const OUTPUTS = [
  { output: 'libs/session-state/dist/index.js', sources: 'libs/session-state/src' },
  { output: 'sample-app/dist/main.js', sources: 'sample-app/src' },
];

/** Generous: two `tsc` runs on a busy 2-core machine. */
export const BUILD_TIMEOUT_MS = 240_000;

/**
 * Makes sure `sample-app/dist` (and the library's dist it imports through `nest-session-state`) is
 * current: runs `npm run build` when an output is missing or older than a `.ts` file under its sources
 * (the same rule as `npm start`). Call it once per spec file, in `beforeAll` with {@link BUILD_TIMEOUT_MS}.
 */
export async function ensureBuilt(): Promise<void> {
  const reason = staleReason();
  if (!reason) return;
  await runBuild(reason);
  const still = staleReason();
  if (still) throw new Error(`npm run build finished but ${still}`);
}

function staleReason(): string | undefined {
  for (const { output, sources } of OUTPUTS) {
    let built: number;
    try {
      built = statSync(join(REPO_ROOT, output)).mtimeMs;
    } catch {
      return `${output} is missing`;
    }
    if (newestSource(join(REPO_ROOT, sources)) > built) return `${output} is older than ${sources}`;
  }
  return undefined;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.isFile() && entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function runBuild(reason: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // Jest's --experimental-vm-modules is not for tsc
    const child = spawn('npm', ['run', 'build'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS - 5_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run npm run build (${reason}): ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`npm run build (${reason}) failed with ${code ?? signal}:\n${output}`));
    });
  });
}
