// Instructions per request, counted by valgrind's callgrind: the deterministic companion of the timed
// benchmark (DESIGN.md: "callgrind instruction counts of the server process over a fixed number of
// requests"). Each configuration's server runs under callgrind with instrumentation off; after warming
// up (the JIT settles), counting is switched on for a fixed number of requests and the totals are read.
// The counts do not depend on what else runs on the machine (req/s and CPU time move by 10-30% here),
// but a window holds the garbage collections and background compilations that happen to fall into it:
// over 1,000 requests a count moves by up to ~8%, so the default is 10,000. Prints the
// throughput targets of the timed benchmark judged on these counts.
//
//   npm run bench:instructions                         # rmw, read, untouched for the default configurations
//   npm run bench:instructions -- --configs baseline,nss-memory --workloads rmw --requests 1000
//   npm run bench:instructions -- --node current       # on the node running npm (default Node 24, as npm run bench, see run.mjs)
//   npm run bench:instructions -- --keep-dir /tmp/cg  # also keep callgrind's output per workload, for callgrind_annotate
//   npm run bench:instructions -- --configs nss-redis --reference ../old   # this build and another's (`<config>-ref` rows)
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assertClean, createSessions, fakeCookies, runLoad } from './lib/load.mjs';
import { RedisServer } from './lib/redis.mjs';
import {
  baseConfigOf,
  baselineOf,
  isBaseline,
  limitOf,
  peerOf,
  REFERENCE_SUFFIX,
  serverScriptOf,
  usesRedis,
} from './lib/platforms.mjs';
import { prepareReference, withReferenceRows } from './lib/reference.mjs';
import { THROUGHPUT_TARGETS } from './lib/report.mjs';
import { NODE_MAJOR, NODE_VERSION, runOnChosenNode } from './lib/runtime.mjs';
import { installCleanupHandlers, JIT_TRACE_FLAGS, readJitTrace, stopAll, track } from './lib/util.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const DEFAULT_CONFIGS = [
  'baseline',
  'limit-redis',
  'nss-memory',
  'nss-redis',
  'nss-redis-app',
  'nss-redis-near',
  'express-session-memory',
  'express-session-redis',
];

const { values: args } = parseArgs({
  options: {
    configs: { type: 'string', default: DEFAULT_CONFIGS.join(',') },
    workloads: { type: 'string', default: 'rmw,read,untouched' },
    requests: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '1500' },
    'warmup-rounds': { type: 'string', default: '12' },
    sessions: { type: 'string', default: '200' },
    node: { type: 'string' },
    'keep-dir': { type: 'string' },
    reference: { type: 'string' },
  },
});
await runOnChosenNode(args.node);
const configs = args.reference ? withReferenceRows(args.configs.split(',')) : args.configs.split(',');
const workloads = args.workloads.split(',');
const requests = Number(args.requests);
const warmup = Number(args.warmup);
const maxWarmupRounds = Number(args['warmup-rounds']);
const sessionCount = Number(args.sessions);

function valgrindAvailable() {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * One bench server (bench/server.mjs, or bench/fastify-server.mjs for the Fastify configurations) under
 * callgrind, counting nothing until told to.
 */
class CallgrindServer {
  static async start(config, options, dir) {
    const server = new CallgrindServer(config, dir);
    await server.launch(options);
    return server;
  }

  constructor(config, dir) {
    this.config = config;
    this.dir = dir;
    this.stopFirst = true;
    this.untrack = track(this);
  }

  launch(options) {
    const child = spawn(
      'valgrind',
      [
        '--tool=callgrind',
        '--instr-atstart=no',
        '--smc-check=all-non-file', // V8 writes and rewrites its machine code
        `--callgrind-out-file=${join(this.dir, `${this.config}.%p`)}`,
        process.execPath,
        // One line per optimized function and per deoptimization: the warm-up runs until none come.
        ...JIT_TRACE_FLAGS,
        join(BENCH, serverScriptOf(this.config)),
        this.config,
        JSON.stringify(options),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    this.child = child;
    this.jitEvents = 0;
    readJitTrace(child.stdout, () => this.jitEvents++);
    const stderr = [];
    child.stderr.on('data', (chunk) => stderr.push(chunk));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.config}: not ready within 180 s`)), 180_000);
      child.on('message', (message) => {
        if (message?.type !== 'ready') return;
        clearTimeout(timer);
        this.url = `http://127.0.0.1:${message.port}`;
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        const tail = Buffer.concat(stderr)
          .toString('utf8')
          .split('\n')
          .filter((l) => !l.startsWith('=='))
          .slice(-8);
        reject(new Error(`${this.config}: exited (code ${code}) before it was ready:\n${tail.join('\n')}`));
      });
    });
  }

  control(...flags) {
    execFileSync('callgrind_control', [...flags, String(this.child.pid)], { stdio: 'ignore' });
  }

  /** Instructions executed (all threads) while `work` ran. */
  async count(work, label) {
    this.control('-z');
    this.control('-i', 'on');
    const result = await work();
    this.control('-i', 'off');
    this.control('-d');
    let total = 0;
    for (const name of await readdir(this.dir)) {
      if (!name.startsWith(`${this.config}.${this.child.pid}.`)) continue;
      const text = await readFile(join(this.dir, name), 'utf8');
      total += Number(/^totals: (\d+)/m.exec(text)?.[1] ?? 0);
      if (args['keep-dir']) {
        await mkdir(args['keep-dir'], { recursive: true });
        await writeFile(join(args['keep-dir'], `${name}.${label}`), text);
      }
      await rm(join(this.dir, name));
    }
    return { result, instructions: total };
  }

  async stop() {
    if (this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await new Promise((resolve) => this.child.once('exit', resolve));
    }
    this.untrack();
  }

  killSync() {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * The timed benchmark's throughput targets (bench/lib/report.mjs), judged on instruction counts: the
 * ratio is the other configuration's count ÷ this one's, as req/s would be if CPU were all that counted.
 * Only the targets whose configurations and workload were counted.
 */
function evaluateTargets(rows) {
  const targets = [];
  const ratio = (a, b) => Math.round((a / b) * 1000) / 1000;
  for (const { name, workload, config, vs, min, limit } of THROUGHPUT_TARGETS) {
    const own = rows[config]?.[workload];
    const other = rows[vs]?.[workload];
    if (!own || !other) continue;
    const value = ratio(other, own);
    // The platform's limit configuration (bench/limit.mjs) on the same ratio, and this count against its count.
    const limitConfig = limitOf(config);
    const atLimit = limit && rows[limitConfig]?.[workload];
    targets.push({
      name,
      workload,
      config,
      vs,
      min,
      value,
      met: value >= min,
      ...(atLimit ? { limitConfig, limit: ratio(other, atLimit), toLimit: ratio(atLimit, own) } : {}),
    });
  }
  return targets;
}

async function main() {
  if (!valgrindAvailable()) {
    console.error('valgrind (with callgrind_control) is not installed: apt-get install valgrind');
    process.exit(1);
  }
  installCleanupHandlers();
  const dir = await mkdtemp(join(tmpdir(), 'bench-callgrind-'));
  const secret = randomBytes(32).toString('base64url');
  const reference = args.reference ? prepareReference(args.reference, BENCH) : undefined;
  const redis = configs.some(usesRedis) ? await RedisServer.start() : undefined;
  const startedAt = new Date();
  const rows = {};
  const warmups = {};
  /** Optimizations and deoptimizations that still happened while counting (0 when settled). */
  const jitDuringCount = {};
  try {
    for (const config of configs) {
      // Generous Redis timeouts: under valgrind a garbage collection can stall the process for a second.
      const options = {
        secret,
        operationTimeout: 30_000,
        ...(usesRedis(config) ? { redisUrl: redis.url } : {}),
        // Under valgrind a pass over the sessions takes seconds: keep near-cache copies for the run.
        ...(baseConfigOf(config) === 'nss-redis-near' ? { nearCacheMaxAge: 600_000 } : {}),
        ...(config.endsWith(REFERENCE_SUFFIX) ? { referencePackage: reference.importPath } : {}),
      };
      process.stdout.write(`${config}: starting under callgrind on Node ${NODE_VERSION}... `);
      const server = await CallgrindServer.start(config, options, dir);
      const cookies = isBaseline(config)
        ? fakeCookies(sessionCount)
        : await createSessions(server.url, sessionCount, 4);
      rows[config] = {};
      // Every route warm before anything is counted, until the JIT has settled: V8 keeps optimizing
      // (on other threads, which callgrind counts too) and runs the code not yet optimized in its
      // interpreter for tens of thousands of requests, longer for more code. Counting earlier
      // measured the tiering, not the steady state (bench/README.md, sixth round).
      let rounds = 0;
      let settled = false;
      while (!settled && rounds < maxWarmupRounds) {
        const before = server.jitEvents;
        for (const workload of workloads) {
          const path = `/${workload}`;
          assertClean(
            `${config} ${path} warm-up`,
            await runLoad({ url: server.url, path, cookies, connections: 8, amount: warmup, timeout: 60 }),
          );
        }
        rounds++;
        settled = rounds >= 2 && server.jitEvents === before;
      }
      warmups[config] = { rounds, requestsPerRoute: rounds * warmup, settled };
      process.stdout.write(
        `warm after ${rounds} rounds of ${warmup} requests per route${settled ? '' : ' (JIT still active)'}: `,
      );
      for (const workload of workloads) {
        const path = `/${workload}`;
        const jitBefore = server.jitEvents;
        const { result, instructions } = await server.count(
          () => runLoad({ url: server.url, path, cookies, connections: 8, amount: requests, timeout: 60 }),
          workload,
        );
        assertClean(`${config} ${path}`, result);
        (jitDuringCount[config] ??= {})[workload] = server.jitEvents - jitBefore;
        rows[config][workload] = Math.round(instructions / result.requests);
        const jit = jitDuringCount[config][workload];
        process.stdout.write(
          `${workload} ${(rows[config][workload] / 1000).toFixed(0)}k${jit ? ` (${jit} JIT events while counting)` : ''}  `,
        );
      }
      process.stdout.write('\n');
      await server.stop();
    }
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }

  // Each row against its own platform's baseline and Redis peer (lib/platforms.mjs), as in the timed report.
  const lines = [
    '| configuration | ' +
      workloads.map((w) => `${w}: instructions / request (x baseline, x Redis peer)`).join(' | ') +
      ' |',
    '| --- | ' + workloads.map(() => '---:').join(' | ') + ' |',
  ];
  for (const config of configs) {
    const cells = workloads.map((w) => {
      const own = rows[config][w];
      const base = rows[baselineOf(config)]?.[w];
      const ref = rows[peerOf(config)]?.[w];
      const vsBase = base ? ` (${(base / own).toFixed(2)}` : ' (—';
      const vsRef = ref ? `, ${(ref / own).toFixed(2)})` : ', —)';
      return `${own.toLocaleString('en-US')}${vsBase}${vsRef}`;
    });
    lines.push(`| ${config} | ${cells.join(' | ')} |`);
  }
  console.log(
    `\nInstructions per request on Node ${NODE_VERSION} (callgrind, all threads; ratios: the other's count ÷ this one's, so > 1 is cheaper;\n` +
      `baseline and Redis peer of the row's platform: baseline / express-session-redis, fastify-baseline / fastify-session-redis):\n`,
  );
  console.log(lines.join('\n'));
  const targets = evaluateTargets(rows);
  if (targets.length > 0) {
    console.log(`\nTargets (issue 20), by instructions per request on Node ${NODE_VERSION}:`);
    for (const t of targets) {
      const state = t.met ? 'MET' : 'NOT MET';
      const limit =
        t.limit === undefined
          ? ''
          : `; the limit (${t.limitConfig}) ${t.limit.toFixed(3)}x, ${t.config} ÷ limit ${t.toLimit.toFixed(3)}x`;
      console.log(`  ${state.padEnd(8)} ${t.name}: ${t.value.toFixed(3)}x${limit}; target >= ${t.min}x`);
    }
  }
  const file = join(
    BENCH,
    'results',
    // The configurations in the name: runs of single configurations started in the same second
    // (in parallel, one per core) must not overwrite each other.
    `${startedAt.toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z-node${NODE_MAJOR}-instructions${
      configs.join(',') === DEFAULT_CONFIGS.join(',') ? '' : `-${configs.join('-')}`
    }.json`,
  );
  await mkdir(dirname(file), { recursive: true });
  await writeFile(
    file,
    JSON.stringify(
      {
        startedAt,
        node: process.version,
        requests,
        warmup,
        sessions: sessionCount,
        configs,
        workloads,
        instructionsPerRequest: rows,
        warmups,
        jitDuringCount,
        targets,
        ...(reference ? { reference: { commit: reference.commit, source: reference.source } } : {}),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nJSON: ${file.slice(ROOT.length + 1)}`);
}

await main();
