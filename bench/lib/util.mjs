// Small helpers shared by the benchmark scripts: child-process registry and cleanup, free ports,
// a seeded shuffle, statistics.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const HOST = '127.0.0.1';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything started by the bench that must be stopped on exit: { name, stop(): Promise, killSync() }. */
const live = new Set();

/** Tracks `item` until the returned function is called. */
export function track(item) {
  live.add(item);
  return () => live.delete(item);
}

/**
 * Stops everything still tracked; never throws. Apps first (items with `stopFirst`), then the Redis
 * servers they use, so the apps do not log lost connections on the way out.
 */
export async function stopAll() {
  const items = [...live].reverse();
  await Promise.allSettled(items.filter((item) => item.stopFirst).map((item) => item.stop()));
  await Promise.allSettled(items.filter((item) => !item.stopFirst).map((item) => item.stop()));
  live.clear();
}

let handlersInstalled = false;

/**
 * Stops every tracked process on Ctrl-C / SIGTERM (then exits 130/143) and kills them synchronously
 * on any other exit (an uncaught error), so no redis-server or app outlives the bench.
 */
export function installCleanupHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  let stopping = false;
  const onSignal = (signal, code) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the benchmark's processes...\n`);
    const force = setTimeout(() => process.exit(code), 5000);
    force.unref();
    void stopAll().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  process.on('exit', () => {
    for (const item of live) {
      try {
        item.killSync();
      } catch {
        // exiting anyway
      }
    }
  });
}

/** Redis cluster nodes also listen on port + 10000 (the cluster bus). */
const BUS_OFFSET = 10000;
const reserved = new Set();

/** A TCP port on 127.0.0.1 that was free when checked (and port + 10000 too with `withBus`), never 6379. */
export async function freePort({ withBus = false } = {}) {
  const ephemeralLow = readEphemeralLow();
  const hi = Math.max(20000, Math.min(55000, ephemeralLow - 1 - (withBus ? BUS_OFFSET : 0)));
  const lo = 10001;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (port === 6379 || port === 16379 || reserved.has(port) || (withBus && reserved.has(port + BUS_OFFSET)))
      continue;
    reserved.add(port);
    if (withBus) reserved.add(port + BUS_OFFSET);
    if ((await isFree(port)) && (!withBus || (await isFree(port + BUS_OFFSET)))) return port;
  }
  throw new Error('freePort: no free port found after 200 attempts');
}

function readEphemeralLow() {
  try {
    const value = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    return Number.isInteger(value) && value > 0 ? value : 32768;
  } catch {
    return 32768;
  }
}

function isFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Mulberry32: a small seeded PRNG, so the interleaving order of a run can be reproduced. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy (Fisher-Yates) using `random`. */
export function shuffle(items, random) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function round(value, digits = 2) {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Node flags that make V8 print one stdout line per optimization and per deoptimization. */
export const JIT_TRACE_FLAGS = ['--trace-opt', '--trace-deopt'];
const JIT_TRACE =
  /^\[(marking|compiling method|completed compiling|completed optimizing|aborted optimizing|optimizing|bailout|deoptimiz)/;
const JIT_EVENT = /^\[(completed optimizing|bailout)/;

/**
 * Reads a child's stdout that carries V8's JIT trace ({@link JIT_TRACE_FLAGS}): calls `onJitEvent` per
 * optimization or deoptimization, and hands every line that is not part of the trace to `onOutput`.
 */
export function readJitTrace(stdout, onJitEvent, onOutput = () => {}) {
  let partial = '';
  stdout.setEncoding('utf8');
  stdout.on('data', (text) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop();
    const shown = [];
    for (const line of lines) {
      if (!JIT_TRACE.test(line)) shown.push(line);
      else if (JIT_EVENT.test(line)) onJitEvent();
    }
    if (shown.length > 0) onOutput(shown.join('\n'));
  });
}
