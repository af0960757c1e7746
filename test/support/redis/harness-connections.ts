import { Redis, type Cluster, type RedisOptions } from 'ioredis';

/**
 * Connections the harness opens itself (admin clients, the monitor's probe) so that CommandMonitor can
 * leave their commands out of what it counts. They are recognised two ways:
 * - by the client address Redis reports in MONITOR output (`127.0.0.1:<local port>`), recorded here when
 *   the socket connects;
 * - by their connection name (`CLIENT SETNAME ...redis-harness...`), which also catches connections ioredis
 *   opens on its own (the Cluster client's slot refresher is named `ioredis-cluster(refresher):<name>`).
 */
export const HARNESS_CONNECTION_NAME = 'redis-harness';

const addresses = new Set<string>();
/** How long an address stays excluded after its socket closed (late MONITOR lines, e.g. QUIT). */
const FORGET_AFTER_MS = 2000;

export function isHarnessAddress(source: string): boolean {
  return addresses.has(source);
}

export function isHarnessConnectionName(name: string | undefined): boolean {
  return name !== undefined && name.includes(HARNESS_CONNECTION_NAME);
}

/** Records the local address of every socket `client` opens (also after reconnects). */
export function trackHarnessConnection(client: Redis): void {
  client.on('connect', () => {
    const stream = client.stream as { localAddress?: string; localPort?: number } | undefined;
    if (!stream?.localAddress || !stream.localPort) return;
    const address = `${stream.localAddress.replace(/^::ffff:/, '')}:${stream.localPort}`;
    addresses.add(address);
    client.once('close', () => {
      setTimeout(() => addresses.delete(address), FORGET_AFTER_MS).unref();
    });
  });
}

/**
 * An ioredis client for the harness's own use: named, tracked, quick to reconnect, and with errors
 * swallowed (a killed server must not produce "Unhandled error event" noise).
 */
export function createHarnessClient(options: RedisOptions, role = 'admin'): Redis {
  const client = new Redis({
    retryStrategy: () => 100,
    // disconnect() waits this long (default 2 s) for a socket to close before destroying it: keep it short
    // so that stopping the harness leaves no timer behind.
    disconnectTimeout: 100,
    ...options,
    connectionName: `${HARNESS_CONNECTION_NAME}:${role}`,
    lazyConnect: true,
  });
  client.on('error', () => undefined);
  trackHarnessConnection(client);
  void client.connect().catch(() => undefined);
  return client;
}

/** Disconnects `client` (a Redis or Cluster client) and resolves once it has ended (at most ~1 s). */
export function closeClient(client: Redis | Cluster | undefined): Promise<void> {
  if (!client || client.status === 'end') return Promise.resolve();
  if (client.status === 'reconnecting' && client instanceof Redis) {
    // No socket open, only a reconnect timer, which disconnect() clears ('end' would never come).
    client.disconnect();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    client.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    client.disconnect();
  });
}
