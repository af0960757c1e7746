#!/usr/bin/env node
// Where the time that instruction counts do not show goes (issue 20): per request, the app's user and
// system CPU time (process.cpuUsage over a fixed number of requests, without tracing), and its system
// calls (`strace -c -f` attached to the warm app over the same number of requests), per configuration
// and workload, side by side with the peers. One configuration at a time, on a private Redis.
//
//   npm run bench:syscalls                                   # default configurations, rmw and read
//   npm run bench:syscalls -- --configs baseline,nss-redis --workloads rmw --requests 5000
//   npm run bench:syscalls -- --node current                 # on the node running npm (default Node 24, as npm run bench)
//   npm run bench:syscalls -- --configs fastify-baseline,limit-redis-fastify,nss-redis-fastify,fastify-session-redis
//                                                            # the Fastify rows (bench/fastify-server.mjs)
//   npm run bench:syscalls -- --configs nss-redis --passes allocations --reference ../old-checkout
//                                                            # bytes allocated per request, this build beside another
//   npm run bench:syscalls -- --configs baseline,nss-memory --passes cpu --rate 4000
//                                                            # CPU per request at 4,000 req/s in all (below saturation)
//
// Three passes per configuration and workload, each over --requests requests (--passes picks them):
//   cpu          user and system CPU per request, per thread kind, context switches (no tracing)
//   strace       system calls per request (strace -c -f attached to the warm app)
//   allocations  bytes allocated per request by area and function (V8's sampling heap profiler, in the app:
//                bench/lib/allocations.mjs); collected garbage included
// --reference DIR adds a `<config>-ref` row running another built checkout of the library (bench/lib/reference.mjs)
// after each library row: the counts of two builds, side by side.
//
// The strace pass needs `strace`. strace slows every system call down (ptrace), so the CPU figures come from a separate
// pass without it; the counts do not depend on the slowdown except where batching does (more requests
// in flight per event-loop turn while the app is slower, so coalesced writes merge more requests): read
// them as a lower bound on the Redis socket's syscalls per request of an untraced app.
import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assertClean, createSessions, fakeCookies, runLoad } from './lib/load.mjs';
import { allocationsPerRequest } from './lib/allocations.mjs';
import { isBaseline, REFERENCE_SUFFIX, serverScriptOf, usesRedis } from './lib/platforms.mjs';
import { prepareReference, withReferenceRows } from './lib/reference.mjs';
import { RedisServer } from './lib/redis.mjs';
import { NODE_MAJOR, NODE_VERSION, runOnChosenNode } from './lib/runtime.mjs';
import { installCleanupHandlers, sleep, stopAll, track } from './lib/util.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const DEFAULT_CONFIGS = [
  'baseline',
  'limit-redis',
  'nss-memory',
  'nss-redis',
  'nss-redis-app',
  'nss-redis-near',
  'express-session-redis',
];

const { values: args } = parseArgs({
  options: {
    configs: { type: 'string', default: DEFAULT_CONFIGS.join(',') },
    workloads: { type: 'string', default: 'rmw,read' },
    requests: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '4' },
    connections: { type: 'string', default: '16' },
    sessions: { type: 'string', default: '1000' },
    node: { type: 'string' },
    passes: { type: 'string', default: 'cpu,strace,allocations' },
    reference: { type: 'string' },
    rate: { type: 'string' },
  },
});
await runOnChosenNode(args.node);
const PASSES = ['cpu', 'strace', 'allocations'];
const passes = new Set(args.passes.split(','));
for (const pass of passes)
  if (!PASSES.includes(pass)) throw new Error(`--passes: unknown pass ${pass} (use ${PASSES.join(', ')})`);
const configs = args.reference ? withReferenceRows(args.configs.split(',')) : args.configs.split(',');
if (new Set(configs).size !== configs.length)
  throw new Error(`--configs: name each configuration once (rows are kept per name; got ${args.configs})`);
const workloads = args.workloads.split(',');
const requests = Number(args.requests);
const warmupSeconds = Number(args.warmup);
const connections = Number(args.connections);
const sessionCount = Number(args.sessions);
const rate = args.rate === undefined ? undefined : Number(args.rate);
if (rate !== undefined && !(rate > 0))
  throw new Error(`--rate: a number of requests per second (got ${args.rate})`);

/**
 * The configuration's bench server (bench/server.mjs, or bench/fastify-server.mjs for the Fastify rows) in a
 * child process, as bench/run.mjs starts it (without the JIT trace).
 */
function startApp(config, options) {
  const child = fork(join(BENCH, serverScriptOf(config)), [config, JSON.stringify(options)], {
    cwd: ROOT,
    execArgv: ['--no-memory-reducer'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let nextId = 1;
  const app = {
    stopFirst: true,
    child,
    request(type) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        child.send({ id, type });
      });
    },
    async stop() {
      if (child.exitCode === null) {
        child.send({ type: 'stop' });
        await new Promise((resolve) => child.once('exit', resolve));
      }
      untrack();
    },
    killSync() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  const untrack = track(app);
  child.on('message', (message) => {
    const done = pending.get(message?.id);
    if (done) {
      pending.delete(message.id);
      done(message);
    }
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${config}: exited (code ${code}) before it was ready`)));
    child.on('message', (message) => {
      if (message?.type !== 'ready') return;
      app.url = `http://127.0.0.1:${message.port}`;
      app.pid = message.pid;
      resolve(app);
    });
  });
}

/** CPU (user, system µs) and requests handled so far, once nothing is in flight. */
async function counters(app) {
  for (;;) {
    const { cpu, received, inFlight } = await app.request('counters');
    if (inFlight === 0) return { user: cpu.user, system: cpu.system, received };
    await sleep(20);
  }
}

/**
 * Per thread of `pid` (the main thread; V8's workers, named `V8 DefaultWorke` on Node 24; other threads,
 * which on Node 20 include V8's unnamed workers): CPU ticks (user + system, /proc/<pid>/task/<tid>/stat) and context switches
 * (voluntary + involuntary, .../status). Linux only; empty elsewhere.
 */
function threadStats(pid) {
  const out = { ticks: {}, switches: 0 };
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
      // The main thread's tid is the pid; Node 24 names V8's workers `V8 DefaultWorke`, Node 20 does not.
      const kind = tid === String(pid) ? 'main' : /^V8/.test(name) ? 'v8 workers' : 'other threads';
      out.ticks[kind] = (out.ticks[kind] ?? 0) + ticks;
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm))
        out.switches += Number(m[1]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** strace -c's summary table: { syscall: { calls, errors, seconds } }. */
function parseStraceSummary(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$/.exec(line);
    if (!m || m[6] === 'total') continue;
    out[m[6]] = { calls: Number(m[4]), errors: Number(m[5] ?? 0), seconds: Number(m[2]) };
  }
  return out;
}

async function traced(app, work, dir, label) {
  const file = join(dir, `${label}.strace`);
  const strace = spawn('strace', ['-c', '-f', '-o', file, '-p', String(app.pid)], { stdio: 'ignore' });
  await sleep(500); // attached to every thread
  const result = await work();
  await sleep(100);
  strace.kill('SIGINT');
  await new Promise((resolve) => strace.once('exit', resolve));
  return { result, syscalls: parseStraceSummary(readFileSync(file, 'utf8')) };
}

/** One line per configuration and workload: what each pass measured. */
function formatRow(r) {
  const parts = [];
  if (r.userMicrosPerRequest !== undefined) {
    const offMain =
      (r.threadMicrosPerRequest['v8 workers'] ?? 0) + (r.threadMicrosPerRequest['other threads'] ?? 0);
    parts.push(
      `user ${String(r.userMicrosPerRequest).padStart(4)} µs  system ${String(r.systemMicrosPerRequest).padStart(4)} µs  ` +
        `(off the main thread ${offMain} µs, ${r.contextSwitchesPerRequest} context switches)`,
    );
  }
  if (r.syscallsPerRequest !== undefined)
    parts.push(
      `syscalls ${r.syscallsPerRequest.toFixed(2)}/req: ${Object.entries(r.perSyscall)
        .slice(0, 6)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  if (r.allocatedBytesPerRequest !== undefined) {
    const { bytes, areas, underLibrary } = r.allocatedBytesPerRequest;
    parts.push(
      `allocated ${bytes} B/req (library with the Node and V8 work it called: ${underLibrary}): ${Object.entries(
        areas,
      )
        .slice(0, 5)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  }
  return parts.join('  ');
}

async function main() {
  if (passes.has('strace')) execFileSync('strace', ['-V'], { stdio: 'ignore' });
  installCleanupHandlers();
  const dir = mkdtempSync(join(tmpdir(), 'bench-strace-'));
  const secret = randomBytes(32).toString('base64url');
  const reference = args.reference ? prepareReference(args.reference, BENCH) : undefined;
  const redis = configs.some(usesRedis) ? await RedisServer.start() : undefined;
  const startedAt = new Date();
  const rows = {};
  try {
    for (const config of configs) {
      const app = await startApp(config, {
        secret,
        ...(usesRedis(config) ? { redisUrl: redis.url } : {}),
        ...(config.endsWith(REFERENCE_SUFFIX) ? { referencePackage: reference.importPath } : {}),
      });
      const cookies = isBaseline(config)
        ? fakeCookies(sessionCount)
        : await createSessions(app.url, sessionCount);
      const load = (workload, span) =>
        runLoad({ url: app.url, path: `/${workload}`, cookies, connections, ...span });
      rows[config] = {};
      for (const workload of workloads) {
        assertClean(`${config} warm-up`, await load(workload, { duration: warmupSeconds }));
        const row = {};
        if (passes.has('cpu')) {
          const before = await counters(app);
          const threadsBefore = threadStats(app.pid);
          const plain = await load(workload, { amount: requests, rate });
          const after = await counters(app);
          const threadsAfter = threadStats(app.pid);
          assertClean(`${config} /${workload}`, plain);
          const handled = after.received - before.received;
          Object.assign(row, {
            userMicrosPerRequest: Math.round((after.user - before.user) / handled),
            systemMicrosPerRequest: Math.round((after.system - before.system) / handled),
            rps: Math.round(plain.rps),
            // CPU by thread kind, µs per request (clock ticks of 10 ms: coarse over a few thousand requests).
            threadMicrosPerRequest: Object.fromEntries(
              Object.entries(threadsAfter.ticks).map(([kind, ticks]) => [
                kind,
                Math.round(((ticks - (threadsBefore.ticks[kind] ?? 0)) * 10_000) / handled),
              ]),
            ),
            contextSwitchesPerRequest:
              Math.round(((threadsAfter.switches - threadsBefore.switches) / handled) * 100) / 100,
          });
        }
        if (passes.has('strace')) {
          const { result, syscalls } = await traced(
            app,
            () => load(workload, { amount: requests }),
            dir,
            `${config}-${workload}`,
          );
          assertClean(`${config} /${workload} traced`, result);
          const total = Object.values(syscalls).reduce((a, s) => a + s.calls, 0) / result.requests;
          row.syscallsPerRequest = Math.round(total * 100) / 100;
          row.perSyscall = Object.fromEntries(
            Object.entries(syscalls)
              .map(([name, s]) => [name, Math.round((s.calls / result.requests) * 100) / 100])
              .filter(([, v]) => v >= 0.01)
              .sort((a, b) => b[1] - a[1]),
          );
        }
        if (passes.has('allocations')) {
          await app.request('allocations-start');
          const before = await counters(app);
          const result = await load(workload, { amount: requests });
          const after = await counters(app);
          const { allocations, error } = await app.request('allocations-stop');
          if (error) throw new Error(`${config} /${workload}: heap sampling failed: ${error}`);
          assertClean(`${config} /${workload} sampled`, result);
          row.allocatedBytesPerRequest = allocationsPerRequest(allocations, after.received - before.received);
        }
        rows[config][workload] = row;
        process.stdout.write(`${config.padEnd(22)} ${workload.padEnd(9)} ${formatRow(row)}\n`);
      }
      await app.stop();
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const file = join(
    BENCH,
    'results',
    `${startedAt.toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z-node${NODE_MAJOR}-syscalls${passes.has('strace') ? '' : `-${[...passes].join('-')}`}.json`,
  );
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt,
        node: NODE_VERSION,
        requests,
        connections,
        sessions: sessionCount,
        ...(rate !== undefined ? { rate } : {}),
        passes: [...passes],
        ...(reference ? { reference: { commit: reference.commit, source: reference.source } } : {}),
        rows,
      },
      null,
      2,
    ) + '\n',
  );
  process.stdout.write(`\nJSON: ${file.slice(ROOT.length + 1)}\n`);
}

await main();
