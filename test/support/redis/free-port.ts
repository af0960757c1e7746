import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Redis cluster nodes listen on `port + CLUSTER_BUS_OFFSET` for the cluster bus. */
export const CLUSTER_BUS_OFFSET = 10000;

export interface FreePortOptions {
  /** Highest acceptable port (default 55000, so that `port + 10000` is still a valid port). */
  max?: number;
  /** Also require `port + 10000` (the Redis cluster bus port) to be free. */
  withClusterBus?: boolean;
}

const HOST = '127.0.0.1';
const DEFAULT_MAX = 55000;
const MIN_PORT = 10001;
const AVOID = new Set([6379, 6379 + CLUSTER_BUS_OFFSET]);
const MAX_ATTEMPTS = 200;

/** Ports handed out by this process (never handed out twice, so concurrent calls cannot collide). */
const reserved = new Set<number>();

/**
 * Returns a TCP port on 127.0.0.1 that was free when checked, <= `max` (default 55000), never 6379.
 *
 * Candidates are drawn at random below the kernel's ephemeral range when possible, so that an outgoing
 * connection cannot grab the port between this check and the moment redis-server binds it.
 */
export async function freePort(options: FreePortOptions = {}): Promise<number> {
  const max = Math.min(options.max ?? DEFAULT_MAX, 65535 - CLUSTER_BUS_OFFSET);
  const bus = options.withClusterBus ?? false;
  const [lo, hi] = candidateRange(max, bus);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (AVOID.has(port) || reserved.has(port) || (bus && reserved.has(port + CLUSTER_BUS_OFFSET))) continue;
    // Reserve before the asynchronous checks: a concurrent call cannot pick the same port meanwhile.
    reserved.add(port);
    if (bus) reserved.add(port + CLUSTER_BUS_OFFSET);
    if ((await isFree(port)) && (!bus || (await isFree(port + CLUSTER_BUS_OFFSET)))) return port;
  }
  throw new Error(`freePort: no free port found in ${lo}..${hi} after ${MAX_ATTEMPTS} attempts`);
}

function candidateRange(max: number, bus: boolean): [number, number] {
  const ephemeralLow = readEphemeralLow();
  const belowEphemeral = ephemeralLow - 1 - (bus ? CLUSTER_BUS_OFFSET : 0);
  const hi = Math.min(max, belowEphemeral);
  if (hi - MIN_PORT >= 1000) return [MIN_PORT, hi];
  if (max - MIN_PORT >= 1000) return [MIN_PORT, max];
  if (max < 1024) throw new Error(`freePort: max ${max} leaves no unprivileged port`);
  return [1024, max];
}

function readEphemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const value = Number(low);
    return Number.isInteger(value) && value > 0 ? value : 32768;
  } catch {
    return 32768;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
