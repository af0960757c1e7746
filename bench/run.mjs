#!/usr/bin/env node
// `npm run bench`: nest-session-state against a no-session baseline and express-session (MemoryStore,
// connect-redis), side by side, interleaved, on a private Redis and Redis Cluster. See bench/README.md.
//
//   npm run bench                          full run on Node 24 (~15 min): updates bench/README.md and bench/results/
//   npm run bench -- --quick               smoke run (~1.5 min): bench/results/<time>-node<major>-quick.json, latest-quick.json
//   npm run bench -- --profile nss-redis:rmw   CPU profile of one server under load, top self-time functions
//   npm run bench -- --node current        the same on the node running npm (20 here; combines with any option)
//
// --node 24 | current | /path/to/bin/node: the runtime of the whole run (apps, load generator, heap children);
//          default 24: the running node when it is 24, else the Node 24 that scripts/node24.sh fetches from the
//          npm registry and caches. Every result names its Node version.
// Options: --repetitions N --duration S --warmup S --warmup-rounds N --connections N --sessions N --seed N
//          --configs a,b --workloads rmw,read --skip-build --skip-readme --profile-seconds S --lead-in S
//          --memory-reducer (apps keep V8's memory reducer, as before 2026-11-22 10:40)
// --reference DIR: also measures a built checkout of another commit (rows `<config>-ref`, interleaved with this
//          build's) and prints each library row against its reference row; never updates README or latest.json
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assertClean, createSessions, fakeCookies, runLoad } from './lib/load.mjs';
import {
  baseConfigOf,
  FASTIFY_CONFIGS,
  isBaseline,
  REFERENCE_SUFFIX,
  serverScriptOf,
  usesRedis,
} from './lib/platforms.mjs';
import {
  compareWithReference,
  formatReferenceComparison,
  prepareReference,
  withReferenceRows,
} from './lib/reference.mjs';
import { formatProfile, summarizeProfile } from './lib/profile.mjs';
import {
  RedisCluster,
  RedisServer,
  commandDelta,
  commandStats,
  monitorCommands,
  scanKeys,
} from './lib/redis.mjs';
import { BenchDatabase, POSTGRES_CONFIGS } from './lib/postgres.mjs';
import {
  evaluateTargets,
  formatTargets,
  realisticAppCost,
  renderMarkdown,
  replaceResults,
  summarize,
} from './lib/report.mjs';
import { NODE_MAJOR, NODE_VERSION, runOnChosenNode } from './lib/runtime.mjs';
import {
  installCleanupHandlers,
  JIT_TRACE_FLAGS,
  median,
  prng,
  readJitTrace,
  round,
  shuffle,
  sleep,
  stopAll,
  track,
} from './lib/util.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH, '..');
const LIB = join(ROOT, 'libs/session-state');

const ALL_CONFIGS = [
  'baseline',
  'baseline-2',
  'limit-redis',
  'nss-memory',
  'nss-redis',
  'nss-redis-app',
  'nss-redis-near',
  'nss-cluster',
  'express-session-memory',
  'express-session-redis',
  'nss-postgres',
  'express-session-postgres',
  ...FASTIFY_CONFIGS,
];
const WORKLOADS = ['rmw', 'read', 'untouched'];

const { values: cli } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'string' },
    'profile-seconds': { type: 'string' },
    repetitions: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'lead-in': { type: 'string' },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    seed: { type: 'string' },
    configs: { type: 'string' },
    workloads: { type: 'string' },
    'skip-build': { type: 'boolean', default: false },
    'skip-readme': { type: 'boolean', default: false },
    'memory-reducer': { type: 'boolean', default: false },
    'warmup-rounds': { type: 'string' },
    node: { type: 'string' },
    reference: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (cli.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0] + '\n');
  process.exit(0);
}

await runOnChosenNode(cli.node);

const num = (value, fallback) => (value === undefined ? fallback : Number(value));
const settings = {
  mode: cli.quick ? 'quick' : 'full',
  // Many short interleaved slices rather than few long ones: other processes' bursts then hit single
  // slices, which the medians drop (see bench/README.md, Method).
  repetitions: num(cli.repetitions, cli.quick ? 1 : 8),
  // Quick runs: 0.5 s slices, to stay under a minute with the limit and realistic-app rows.
  durationSeconds: num(cli.duration, cli.quick ? 0.5 : 1),
  warmupSeconds: num(cli.warmup, cli.quick ? 0.2 : 0.5),
  // Warm-up rounds go on until V8 has settled in every app (a round without optimizations or
  // deoptimizations): the library's app compiles for ~35,000 requests, longer than a fixed warm-up
  // ran, and slices measured meanwhile measured the tiering (bench/README.md, Method).
  warmupRounds: num(cli['warmup-rounds'], cli.quick ? 1 : 20),
  // Unmeasured load right before each measured slice: an app that sat idle through the other
  // configurations' slices starts cold (caches, heap), and in a 1 s slice that start was measured more
  // than the steady state (bench/README.md, Method).
  leadInSeconds: num(cli['lead-in'], cli.quick ? 0 : 0.5),
  connections: num(cli.connections, 16),
  sessions: num(cli.sessions, 1000),
  seed: num(cli.seed, Math.floor(Math.random() * 2 ** 31)),
  heapSessions: cli.quick ? 20_000 : 100_000,
  // Requests per configuration and workload counted under MONITOR (round trips).
  monitoredRequests: cli.quick ? 100 : 1000,
  configs: cli.configs
    ? cli.configs.split(',')
    : // The A/A control and the cluster (an info row that starts 3 more Redis) only in full runs: the
      // quick run stays under a minute with the limit and realistic-app rows.
      ALL_CONFIGS.filter((c) => !(cli.quick && (c === 'baseline-2' || c === 'nss-cluster'))),
  workloads: cli.workloads ? cli.workloads.split(',') : WORKLOADS,
  // Node flags of every app process. Interleaving leaves each app idle for the other configurations'
  // slices (~8-10 s); V8's memory reducer then shrinks its heap, and the next slice is spent growing it
  // back: measured (bench/slice-transient.mjs), the first quarter of a 1 s slice after 10 s idle cost up to
  // ~1.9x the CPU per request of the last. A server under steady load never gets there, so the slices measure without it
  // (`--memory-reducer` puts it back; bench/README.md, Method).
  appNodeFlags: [
    ...(cli['memory-reducer'] ? [] : ['--no-memory-reducer']),
    // One stdout line per optimization and deoptimization: counted (AppServer.jitEvents), not printed.
    ...JIT_TRACE_FLAGS,
  ],
};
for (const c of settings.configs) if (!ALL_CONFIGS.includes(c)) fail(`unknown configuration ${c}`);
// A reference run also measures the A/A control (two processes of the same baseline app): the spread between two
// identical apps in this run, against which its reference ratios are read.
if (cli.reference && !cli.profile)
  settings.configs = withReferenceRows([
    ...settings.configs,
    ...(settings.configs.includes('baseline-2') ? [] : ['baseline-2']),
  ]);
for (const w of settings.workloads) if (!WORKLOADS.includes(w)) fail(`unknown workload ${w}`);
if (!settings.configs.includes('baseline')) settings.configs.unshift('baseline');
// Fastify rows are compared with the Fastify baseline (lib/platforms.mjs).
if (
  settings.configs.some((c) => FASTIFY_CONFIGS.includes(c)) &&
  !settings.configs.includes('fastify-baseline')
)
  settings.configs.splice(1, 0, 'fastify-baseline');
if (settings.sessions < 1000)
  fail('--sessions must be >= 1000 (the benchmark spec asks for 1,000 distinct sessions)');

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const log = (line = '') => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------------
// The library build: the apps import nest-session-state from libs/session-state/dist.

function newestMtime(dir, filter) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, filter));
    else if (filter(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function ensureLibraryBuilt() {
  const built = join(LIB, 'dist/index.js');
  const source = newestMtime(join(LIB, 'src'), (n) => n.endsWith('.ts') && !n.endsWith('.spec.ts'));
  if (existsSync(built) && statSync(built).mtimeMs >= source) return 'up to date';
  if (cli['skip-build']) {
    log('warning: libs/session-state/dist is older than its sources (--skip-build): measuring the old build');
    return 'stale (skipped)';
  }
  log('Building libs/session-state (dist is missing or older than src)...');
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(LIB, 'tsconfig.lib.json')],
      { cwd: ROOT, stdio: 'inherit' },
    );
  } catch {
    throw new Error('building libs/session-state failed (see above); fix it or run with --skip-build');
  }
  return 'rebuilt';
}

// ---------------------------------------------------------------------------------------------------
// App servers: one child process per configuration.

class AppServer {
  static start(config, options, { execArgv = [] } = {}) {
    const server = new AppServer(config);
    return server.launch(options, execArgv);
  }

  constructor(config) {
    this.config = config;
    this.stopFirst = true; // before the Redis servers (see stopAll)
    this.pending = new Map();
    this.nextId = 1;
    this.untrack = track(this);
  }

  launch(options, execArgv) {
    const child = fork(join(BENCH, serverScriptOf(this.config)), [this.config, JSON.stringify(options)], {
      cwd: ROOT,
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    /** V8 optimizations and deoptimizations so far (from --trace-opt / --trace-deopt). */
    this.jitEvents = 0;
    const prefix = (chunk) =>
      !this.stopping &&
      chunk
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .forEach((line) => process.stderr.write(`  [${this.config}] ${line}\n`));
    readJitTrace(child.stdout, () => this.jitEvents++, prefix);
    child.stderr.on('data', prefix);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('message', (message) => {
      const waiter = this.pending.get(message?.id);
      if (waiter) {
        this.pending.delete(message.id);
        waiter(message);
      }
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.config}: the app did not start within 60 s`)),
        60_000,
      );
      child.on('message', (message) => {
        if (message?.type !== 'ready') return;
        clearTimeout(timer);
        this.port = message.port;
        this.pid = message.pid;
        this.url = `http://127.0.0.1:${message.port}`;
        resolve(this);
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (!this.stopping) {
          const error = new Error(`${this.config}: the app exited (code ${code}, signal ${signal})`);
          this.crashed = error;
          reject(error);
        }
      });
    });
  }

  request(type) {
    if (this.crashed) return Promise.reject(this.crashed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.config}: no answer to ${type}`)), 10_000);
      this.pending.set(id, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      this.child.send({ id, type });
    });
  }

  /**
   * Waits until the app has answered every request it received (a run's last requests finish after the
   * load generator stops), then returns its CPU time (µs) and the number of requests it received.
   */
  async settledCounters() {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { cpu, received, inFlight } = await this.request('counters');
      if (inFlight === 0) return { cpuMicros: cpu.user + cpu.system, received };
      if (Date.now() > deadline)
        throw new Error(`${this.config}: ${inFlight} requests still in flight after 10 s`);
      await sleep(20);
    }
  }

  /** Asks the app to close and exit (so --cpu-prof writes its profile); SIGKILL after 10 s. */
  stop() {
    this.stopping ??= (async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        if (this.child.connected) this.child.send({ type: 'stop' });
        else this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
        await this.exited;
        clearTimeout(timer);
      }
      this.untrack();
    })();
    return this.stopping;
  }

  killSync() {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Server options for a configuration (the same secret for every app, so cookies cost the same). */
function serverOptions(config, infra) {
  const options = { secret: infra.secret };
  if (usesRedis(config)) options.redisUrl = infra.redis.url;
  if (baseConfigOf(config) === 'nss-cluster') options.clusterNodes = infra.cluster.clusterNodes;
  if (POSTGRES_CONFIGS.has(baseConfigOf(config))) options.databaseUrl = infra.postgres.url;
  if (config.endsWith(REFERENCE_SUFFIX)) options.referencePackage = infra.reference.importPath;
  return options;
}

/** The Redis servers a configuration talks to (for INFO deltas and MONITOR). */
function redisServersOf(config, infra) {
  if (baseConfigOf(config) === 'nss-cluster') return infra.cluster.nodes;
  if (usesRedis(config)) return [infra.redis];
  return [];
}

async function startInfrastructure(configs) {
  const { randomBytes } = await import('node:crypto');
  const infra = { secret: randomBytes(32).toString('base64url') };
  const needRedis = configs.some(usesRedis);
  const needCluster = configs.some((c) => baseConfigOf(c) === 'nss-cluster');
  const [redis, cluster] = await Promise.all([
    needRedis ? RedisServer.start() : undefined,
    needCluster ? RedisCluster.start(3) : undefined,
  ]);
  infra.redis = redis;
  infra.cluster = cluster;
  infra.redisVersion = await (redis ?? cluster?.nodes[0])?.version();
  if (configs.some((c) => POSTGRES_CONFIGS.has(baseConfigOf(c))))
    infra.postgres = await BenchDatabase.create();
  if (cli.reference) infra.reference = prepareReference(cli.reference, BENCH);
  return infra;
}

async function cookiesFor(server, count) {
  return isBaseline(server.config) ? fakeCookies(count) : createSessions(server.url, count);
}

async function redisCpuMicros(servers) {
  let total = 0;
  for (const s of servers) {
    const info = await s.admin.info('cpu');
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
    total += (user + sys) * 1e6;
  }
  return total;
}

/**
 * Rounds of `warmupSeconds` of load per workload on every app until its JIT has settled: at least two
 * rounds, then until a round with no optimization and no deoptimization (at most `warmupRounds`).
 */
async function warmUp(servers, configs, workloads, cookies) {
  const rounds = {};
  let warming = [...configs];
  for (let round = 1; warming.length > 0 && round <= settings.warmupRounds; round++) {
    const before = Object.fromEntries(warming.map((c) => [c, servers[c].jitEvents]));
    for (const workload of workloads) {
      for (const config of warming) {
        await unmeasuredLoad('warm-up', servers[config], workload, cookies[config], {
          duration: settings.warmupSeconds,
        });
      }
    }
    for (const config of warming) rounds[config] = round;
    warming = warming.filter((c) => round < 2 || servers[c].jitEvents !== before[c]);
  }
  return { rounds, unsettled: settings.warmupRounds > 1 ? warming : [] };
}

/** The benchmark's load on one app's route: for `duration` seconds or `amount` requests. */
function loadRoute(server, workload, cookies, { duration, amount }) {
  return runLoad({
    url: server.url,
    path: `/${workload}`,
    cookies,
    connections: settings.connections,
    duration,
    amount,
  });
}

/** Load on one app's route that is not measured (warm-up, lead-in); fails the run on any bad response. */
async function unmeasuredLoad(label, server, workload, cookies, span) {
  const result = await loadRoute(server, workload, cookies, span);
  // A 0.5 s warm-up or lead-in that got no response at all (every core taken by other processes: seen twice
  // at a load average of ~13) measured nothing and broke nothing: the measured slice still has to be clean.
  if (span.duration !== undefined && result.requests === 0 && result.errors === 0) return;
  assertClean(`${label} ${server.config} /${workload}`, result);
}

/** One measured run with the counters read around it. */
async function measure(server, workload, cookies, infra, { duration, amount }) {
  const redisServers = redisServersOf(server.config, infra);
  if (duration !== undefined && settings.leadInSeconds > 0) {
    await unmeasuredLoad('lead-in', server, workload, cookies, { duration: settings.leadInSeconds });
  }
  const before = await server.settledCounters();
  const jitBefore = server.jitEvents;
  const statsBefore = redisServers.length ? await commandStats(redisServers) : undefined;
  const redisCpuBefore = redisServers.length ? await redisCpuMicros(redisServers) : 0;
  const result = await loadRoute(server, workload, cookies, { duration, amount });
  const after = await server.settledCounters();
  await sleep(50); // work after the response (e.g. an untouched request's PEXPIRE) lands in this run
  const redisCpuAfter = redisServers.length ? await redisCpuMicros(redisServers) : 0;
  const statsAfter = redisServers.length ? await commandStats(redisServers) : undefined;
  assertClean(`${server.config} /${workload}`, result);
  // Per-request figures divide by the requests the app handled (including those answered after the
  // load generator stopped: their Redis commands and CPU are in the deltas too).
  const handled = after.received - before.received;
  return {
    ...result,
    handled,
    appCpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / handled,
    jitEvents: server.jitEvents - jitBefore,
    ...(redisServers.length
      ? {
          commands: commandDelta(statsBefore, statsAfter),
          redisCpuMicrosPerRequest: (redisCpuAfter - redisCpuBefore) / handled,
        }
      : {}),
  };
}

/** Bytes per session in Redis (MEMORY USAGE, median over some keys) and what one key holds. */
async function redisMemory(infra) {
  const out = {};
  const sample = async (pattern, keyShape, describe) => {
    const keys = await scanKeys(infra.redis, pattern, 25);
    if (keys.length === 0) return undefined;
    const sizes = [];
    for (const key of keys)
      sizes.push(Number(await infra.redis.admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')));
    return {
      bytes: median(sizes),
      min: Math.min(...sizes),
      max: Math.max(...sizes),
      sampled: keys.length,
      keyShape,
      keyLength: Buffer.byteLength(keys[0]),
      example: await describe(keys[0]),
    };
  };
  out.nss = await sample('{nest_*}_Data', '{nest_<key>}_Data', async (key) => {
    const fields = await infra.redis.admin.hgetallBuffer(key);
    return {
      type: 'hash',
      encoding: await infra.redis.admin.call('OBJECT', 'ENCODING', key),
      fields: Object.fromEntries(
        Object.entries(fields).map(([k, v]) => [JSON.stringify(k), `${v.length} bytes`]),
      ),
    };
  });
  out.connectRedis = await sample('sess:*', 'sess:<id>', async (key) => ({
    type: 'string',
    encoding: await infra.redis.admin.call('OBJECT', 'ENCODING', key),
    value: await infra.redis.admin.get(key),
  }));
  return out;
}

function heapChild(kind, count) {
  const output = execFileSync(
    process.execPath,
    ['--expose-gc', join(BENCH, 'heap.mjs'), kind, String(count)],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  return JSON.parse(output.trim().split('\n').pop());
}

function packageVersion(name) {
  try {
    const path =
      name === 'nest-session-state'
        ? join(LIB, 'package.json')
        : join(ROOT, 'node_modules', name, 'package.json');
    return JSON.parse(readFileSync(path, 'utf8')).version;
  } catch {
    return 'missing';
  }
}

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'libs/session-state/src'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return { gitCommit: commit, gitDirty: dirty !== '' };
  } catch {
    return { gitCommit: 'unknown', gitDirty: false };
  }
}

function machineInfo(redisVersion) {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: redisVersion ?? 'not used',
    loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
    packages: Object.fromEntries(
      [
        'nest-session-state',
        '@nestjs/core',
        '@nestjs/common',
        '@nestjs/platform-express',
        'express',
        'express-session',
        'connect-redis',
        'redis',
        'ioredis',
        'pg',
        'connect-pg-simple',
        'autocannon',
      ].map((name) => [name, packageVersion(name)]),
    ),
    ...gitInfo(),
  };
}

const fmtRun = (r) =>
  `${String(Math.round(r.rps)).padStart(6)} req/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99
    .toFixed(2)
    .padStart(6)} ms  app CPU ${r.appCpuMicrosPerRequest.toFixed(0).padStart(4)} µs/req${
    r.jitEvents ? `  (${r.jitEvents} JIT events)` : ''
  }`;

// ---------------------------------------------------------------------------------------------------
// The full (or quick) benchmark.

async function benchmark() {
  const started = Date.now();
  const phases = {};
  let phaseStart = started;
  const phase = (name) => {
    const now = Date.now();
    phases[name] = round((now - phaseStart) / 1000, 1);
    phaseStart = now;
  };
  const startedAt = new Date(started).toISOString();
  const build = ensureLibraryBuilt();
  const { configs, workloads } = settings;
  log(
    `nest-session-state benchmark (${settings.mode}) on Node ${NODE_VERSION}: ${configs.length} configurations x ${workloads.length} workloads x ` +
      `${settings.repetitions} repetitions x ${settings.durationSeconds} s, ${settings.connections} connections, ` +
      `${settings.sessions} sessions, seed ${settings.seed}`,
  );
  const loadAverage = os.loadavg()[0];
  if (loadAverage > 0.7)
    log(`note: load average ${loadAverage.toFixed(2)} before the start: something else is using the CPU`);

  phase('build');
  const infra = await startInfrastructure(configs);
  const machine = machineInfo(infra.redisVersion);
  log(
    `Redis ${infra.redisVersion ?? '-'} on ${infra.redis?.port ?? '-'}; cluster on ${infra.cluster?.clusterNodes.join(' ') ?? '-'}`,
  );

  const servers = {};
  await Promise.all(
    configs.map(async (config) => {
      servers[config] = await AppServer.start(config, serverOptions(config, infra), {
        execArgv: settings.appNodeFlags,
      });
    }),
  );
  phase('start');
  log(`Apps: ${configs.map((c) => `${c} :${servers[c].port}`).join(', ')}`);

  const cookies = {};
  for (const config of configs) cookies[config] = await cookiesFor(servers[config], settings.sessions);
  log(`Sessions: ${settings.sessions} per configuration (one GET /rmw each).`);

  const redisMem = infra.redis ? await redisMemory(infra) : undefined;
  phase('sessions');

  const warmup = await warmUp(servers, configs, workloads, cookies);
  log(
    `Warm-up: ${configs.map((c) => `${c} ${warmup.rounds[c]}`).join(', ')} rounds of ${settings.warmupSeconds} s ` +
      `per workload${warmup.unsettled.length ? `; JIT still active in ${warmup.unsettled.join(', ')}` : ''}.`,
  );

  phase('warmup');
  const random = prng(settings.seed);
  const runs = [];
  const order = [];
  for (let repetition = 1; repetition <= settings.repetitions; repetition++) {
    for (const workload of workloads) {
      const shuffled = shuffle(configs, random);
      order.push({ repetition, workload, configs: shuffled });
      for (const config of shuffled) {
        const result = await measure(servers[config], workload, cookies[config], infra, {
          duration: settings.durationSeconds,
        });
        runs.push({ repetition, workload, config, ...result });
        log(
          `  rep ${repetition}/${settings.repetitions}  ${workload.padEnd(9)} ${config.padEnd(22)} ${fmtRun(result)}`,
        );
      }
    }
  }

  phase('measure');
  // Round trips: the commands clients send (MONITOR leaves out those run inside Lua scripts), one
  // request per session, right after the timed runs (so every session was slid recently).
  const roundTrips = {};
  for (const config of configs.filter((c) => redisServersOf(c, infra).length > 0)) {
    roundTrips[config] = {};
    for (const workload of workloads) {
      // Steady state first: the sessions measured below (the same first cookies) visited just before, so
      // slid recently and held by a near cache.
      await unmeasuredLoad('round-trip warm-up', servers[config], workload, cookies[config], {
        amount: settings.monitoredRequests,
      });
      const monitor = await monitorCommands(redisServersOf(config, infra));
      const result = await runLoad({
        url: servers[config].url,
        path: `/${workload}`,
        cookies: cookies[config],
        connections: settings.connections,
        amount: settings.monitoredRequests,
      });
      const counts = await monitor.stop();
      assertClean(`round trips ${config} /${workload}`, result);
      const perCommand = (counts) =>
        Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, round(v / result.requests, 3)]));
      const topLevel = Object.values(counts.topLevel).reduce((a, b) => a + b, 0);
      roundTrips[config][workload] = {
        requests: result.requests,
        perRequest: round(topLevel / result.requests, 3),
        topLevel: perCommand(counts.topLevel),
        inScripts: perCommand(counts.inScripts),
      };
    }
  }

  phase('roundTrips');
  // Sanity: every rmw wrote (the counter of a session grew), reads do not create sessions.
  const sanity = {};
  // Only when rmw ran: a subset run of `read` or `untouched` alone leaves every counter at 1.
  const checked = workloads.includes('rmw') ? configs.filter((c) => !isBaseline(c)) : [];
  for (const config of checked) {
    const response = await fetch(`${servers[config].url}/read`, { headers: { cookie: cookies[config][0] } });
    const { count } = await response.json();
    const expectedAtLeast = 1 + settings.repetitions; // each rmw run sends many requests per session
    sanity[config] = { counterOfFirstSession: count, ok: count >= expectedAtLeast };
    if (!(count >= expectedAtLeast))
      throw new Error(`${config}: the first session's counter is ${count}; rmw requests did not persist`);
  }

  const appMemory = {};
  for (const config of configs) appMemory[config] = (await servers[config].request('memory')).memory;

  await Promise.all(Object.values(servers).map((s) => s.stop()));
  await Promise.all([infra.redis?.stop(), infra.cluster?.stop(), infra.postgres?.drop()]);

  log(`In-process memory: ${settings.heapSessions} one-counter sessions per store (node --expose-gc)...`);
  const heap = {
    nss: heapChild('nss', settings.heapSessions),
    expressSession: heapChild('express-session', settings.heapSessions),
  };

  phase('stopAndHeap');
  const summary = summarize(runs, configs, workloads);
  let control;
  if (configs.includes('baseline-2')) {
    control = {};
    for (const workload of workloads) {
      const row = summary[workload]['baseline-2'];
      control[workload] = {
        ratio: row.ratioToBaseline,
        min: row.ratioToBaselineMin,
        max: row.ratioToBaselineMax,
        cpuRatio: row.cpuRatioToBaseline,
      };
    }
  }
  const finished = Date.now();
  const stamp = startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  // A run of a subset of configurations or workloads, or against a reference, is an experiment: kept, but
  // never "latest".
  const subset = Boolean(cli.configs || cli.workloads || cli.reference);
  const suffix = `${settings.mode === 'quick' ? '-quick' : ''}${subset ? '-subset' : ''}`;
  const file = `${stamp}-node${NODE_MAJOR}${suffix}.json`;
  const result = {
    schema: 1,
    file,
    node: NODE_VERSION,
    startedAt,
    finishedAt: new Date(finished).toISOString(),
    elapsedSeconds: round((finished - started) / 1000, 1),
    phaseSeconds: phases,
    settings: { ...settings, libraryBuild: build, order },
    warmup,
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)) },
    configs,
    workloads,
    summary,
    control,
    roundTrips,
    redisMemory: redisMem,
    heap,
    appMemory,
    sanity,
    runs: runs.map(({ statuses: _statuses, ...r }) => ({
      ...r,
      rps: round(r.rps, 1),
      p50: round(r.p50, 3),
      p99: round(r.p99, 3),
      meanLatency: round(r.meanLatency, 3),
      appCpuMicrosPerRequest: round(r.appCpuMicrosPerRequest, 1),
      ...(r.redisCpuMicrosPerRequest !== undefined
        ? { redisCpuMicrosPerRequest: round(r.redisCpuMicrosPerRequest, 1) }
        : {}),
    })),
  };
  result.targets = evaluateTargets(result);
  result.realisticApp = realisticAppCost(result);
  if (infra.reference) {
    const { importPath: _importPath, ...reference } = infra.reference;
    result.reference = { ...reference, comparison: compareWithReference(runs, configs, workloads) };
  }

  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const json = JSON.stringify(result, null, 2) + '\n';
  writeFileSync(join(resultsDir, file), json);
  if (!subset) writeFileSync(join(resultsDir, `latest${suffix}.json`), json);
  const markdown = renderMarkdown(result);
  let updateReadme = settings.mode === 'full' && !cli['skip-readme'] && !subset;
  if (updateReadme) {
    // Each runtime has its own results section (Node 24 first, the headline; Node 20 second).
    const readmePath = join(BENCH, 'README.md');
    const text = replaceResults(readFileSync(readmePath, 'utf8'), markdown, NODE_MAJOR);
    if (text === undefined) {
      log(`bench/README.md has no results section for Node ${NODE_MAJOR}: left alone`);
      updateReadme = false;
    } else {
      // Formatted as `prettier --check` (npm run lint) expects it.
      const prettier = await import('prettier');
      const config = (await prettier.resolveConfig(readmePath)) ?? {};
      writeFileSync(readmePath, await prettier.format(text, { ...config, filepath: readmePath }));
    }
  }

  log('');
  log(markdown.split('Targets (issue 20)')[0].trim());
  log('');
  log(`Targets (issue 20) on Node ${NODE_VERSION}:`);
  for (const { line } of formatTargets(result.targets)) log(`  ${line}`);
  log('');
  if (result.reference) {
    for (const line of formatReferenceComparison(result.reference, control)) log(line);
    log('');
  }
  log(
    `Results: ${relative(ROOT, join(resultsDir, file))}${updateReadme ? ' and bench/README.md' : ''} ` +
      `(${Math.round((finished - started) / 1000)} s: ${Object.entries(phases)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}).`,
  );
}

// ---------------------------------------------------------------------------------------------------
// --profile config:workload

async function profile(spec) {
  const [config, workload = 'rmw'] = spec.split(':');
  if (!ALL_CONFIGS.includes(baseConfigOf(config)) || !WORKLOADS.includes(workload))
    fail(`--profile expects <configuration>:<workload>, e.g. nss-redis:rmw (got ${spec})`);
  if (config.endsWith(REFERENCE_SUFFIX) && !cli.reference)
    fail(
      `--profile ${spec}: a ${REFERENCE_SUFFIX} row runs the reference build; name it with --reference DIR`,
    );
  const seconds = num(cli['profile-seconds'], 10);
  ensureLibraryBuilt();
  const dir = join(BENCH, 'profiles');
  mkdirSync(dir, { recursive: true });
  const infra = await startInfrastructure([config]);
  const server = await AppServer.start(config, serverOptions(config, infra), {
    execArgv: [...settings.appNodeFlags, '--cpu-prof', '--cpu-prof-dir', dir],
  });
  const cookies = await cookiesFor(server, settings.sessions);
  const load = (duration) =>
    runLoad({ url: server.url, path: `/${workload}`, cookies, connections: settings.connections, duration });
  log(
    `Profiling ${config} /${workload} on Node ${NODE_VERSION}: warm-up 2 s, then ${seconds} s under load (${settings.connections} connections).`,
  );
  assertClean('warm-up', await load(2));
  const before = await server.settledCounters();
  const { micros: from } = await server.request('now');
  const result = await load(seconds);
  const { micros: to } = await server.request('now');
  const after = await server.settledCounters();
  const cpuPerRequest = (after.cpuMicros - before.cpuMicros) / (after.received - before.received);
  assertClean('profiled run', result);
  const pid = server.pid;
  await server.stop();
  await Promise.all([infra.redis?.stop(), infra.cluster?.stop(), infra.postgres?.drop()]);
  const file = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile') && name.includes(`.${pid}.`))
    .map((name) => join(dir, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) throw new Error(`no .cpuprofile for pid ${pid} in ${dir}`);
  log(
    `${Math.round(result.rps)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms while profiling.`,
  );
  log(
    `Profile: ${relative(ROOT, file)} (open in Chrome DevTools > Performance); samples of the loaded window only.`,
  );
  log('');
  const summary = summarizeProfile(file, { fromMicros: from, toMicros: to });
  log(formatProfile(summary, 25, cpuPerRequest));
  // The summary as JSON next to the profile, to compare two apps function by function.
  const summaryFile = file.replace(/\.cpuprofile$/, '.summary.json');
  writeFileSync(
    summaryFile,
    JSON.stringify(
      {
        config,
        workload,
        node: NODE_VERSION,
        requests: result.requests,
        rps: result.rps,
        cpuMicrosPerRequest: cpuPerRequest,
        ...summary,
      },
      null,
      1,
    ),
  );
  log();
  log(`Summary: ${relative(ROOT, summaryFile)}`);
}

// ---------------------------------------------------------------------------------------------------

installCleanupHandlers();
try {
  if (cli.profile) await profile(cli.profile);
  else await benchmark();
} catch (error) {
  process.stderr.write(`\nbench failed: ${error?.stack ?? error}\n`);
  await stopAll();
  process.exit(1);
}
await stopAll();
process.exit(0);
