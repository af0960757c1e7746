// The Node runtime a benchmark runs on (--node): the bench script re-runs itself on the chosen binary, so
// the apps it forks (process.execPath), the load generator and the heap children all run on that Node.
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** `v24.22.3` and its major, `24`: how results name the runtime. */
export const NODE_VERSION = process.version;
export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** The node binary `--node <choice>` names, or undefined when it is the one running now. */
function resolveBinary(choice) {
  if (choice === 'current') return undefined;
  if (/^\d+$/.test(choice)) {
    if (Number(choice) === NODE_MAJOR) return undefined;
    if (choice !== '24')
      throw new Error(
        `--node ${choice}: only 24 is fetched (scripts/node24.sh); pass the path of a Node ${choice} binary instead`,
      );
    const bin = execFileSync('bash', [join(ROOT, 'scripts/node24.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    return join(bin, 'node');
  }
  const binary = resolve(choice);
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(
      `--node ${choice}: no executable there; pass a node binary (e.g. .../bin/node), 24, or current`,
    );
  }
  return realpathSync(binary) === realpathSync(process.execPath) ? undefined : binary;
}

/**
 * The runtime of a benchmark when `--node` is not given: Node 24, the current LTS and the headline (issue 20).
 * `--node current` runs on the node that started the script.
 */
export const DEFAULT_NODE = '24';

/**
 * Runs the calling script on the Node that `--node` names ({@link DEFAULT_NODE} when absent) and exits with
 * its status, or returns at once when that is the Node already running (`current`, the same major, the same
 * binary). Its directory goes first on PATH, so whatever the bench starts by name (`node`, npm) runs on it too.
 */
export async function runOnChosenNode(choice = DEFAULT_NODE) {
  let binary;
  try {
    binary = resolveBinary(choice);
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exit(2);
  }
  if (binary === undefined) return;
  const child = spawn(binary, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, PATH: `${dirname(binary)}${delimiter}${process.env.PATH ?? ''}` },
  });
  // Ctrl-C reaches the child from the terminal (same process group): it stops its own processes.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  const [code, signal] = await new Promise((done) => child.once('exit', (...args) => done(args)));
  process.exit(code ?? (signal === 'SIGINT' ? 130 : 1));
}
