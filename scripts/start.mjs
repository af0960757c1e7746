#!/usr/bin/env node
// `npm start`: builds the library and the sample app when their output is missing or older than any
// TypeScript source, then runs the sample app (environment passed through, SIGINT/SIGTERM forwarded).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Each build output and the source folder it comes from. */
const outputs = [
  { output: 'libs/session-state/dist/index.js', sources: 'libs/session-state/src' },
  { output: 'sample-app/dist/main.js', sources: 'sample-app/src' },
];

/** Newest mtime (ms) of the `.ts` files under `dir`, or 0 when there are none. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.isFile() && entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Why a build is needed, or undefined when every output is newer than its sources. */
function staleReason() {
  for (const { output, sources } of outputs) {
    let built;
    try {
      built = statSync(join(root, output)).mtimeMs;
    } catch {
      return `${output} is missing`;
    }
    if (newestSource(join(root, sources)) > built) return `${output} is older than ${sources}`;
  }
  return undefined;
}

const reason = staleReason();
if (reason) {
  console.log(`Building (${reason}): npm run build`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.error) {
    console.error(`Could not run npm run build: ${build.error.message}`);
    process.exit(1);
  }
  if (build.status !== 0) {
    console.error(`npm run build failed (exit ${build.status ?? build.signal}).`);
    process.exit(build.status ?? 1);
  }
}

const main = join(root, 'sample-app/dist/main.js');
const app = spawn(process.execPath, [main], { cwd: root, env: process.env, stdio: 'inherit' });
console.log(`Started ${relative(root, main)} (pid ${app.pid})`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (app.exitCode === null && app.signalCode === null) app.kill(signal);
  });
}
app.on('error', (error) => {
  console.error(`Could not start the sample app: ${error.message}`);
  process.exit(1);
});
app.on('exit', (code, signal) => {
  if (signal) {
    // Leave the way the app did (so a shell sees e.g. 130 for SIGINT).
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 0);
  }
});
