import { Cluster, type Redis } from 'ioredis';
import type { Deadlines } from '../deadlines.js';
import { RedisOperationError } from './redis-cache.errors.js';
import { withoutCommand } from './without-command.js';

/**
 * PINGs standalone Redis, or every master of a cluster (each holds a share of the sessions: one
 * master down is an outage for its visitors), each bounded by `timeoutMs`. Rejects with the first
 * failure, naming the node and why: not connected (with the last connection error), no reply within
 * the timeout, or Redis's error reply.
 */
export async function pingRedis(
  client: Redis | Cluster,
  timeoutMs: number,
  deadlines: Deadlines,
  lastError: () => Error | undefined,
): Promise<void> {
  if (client instanceof Cluster) {
    if (client.status !== 'ready') throw notConnected('Redis Cluster', client.status, lastError());
    const masters = client.nodes('master');
    const connected = new Set(masters.map((node) => `${node.options.host}:${node.options.port}`));
    // ioredis drops a master's connection once it is gone, but its slots still point at it.
    const owners = new Set<string | undefined>(client.slots.map((nodes) => nodes?.[0]));
    if (owners.has(undefined) || masters.length === 0) {
      throw new RedisOperationError('Redis Cluster has slots that no master serves.', 'PING');
    }
    for (const owner of owners) {
      if (owner !== undefined && !connected.has(owner)) {
        throw notConnected(`Redis Cluster master at ${owner}`, 'connection lost', lastError());
      }
    }
    // A master ioredis made from the slot map but never used (lazily connected: a replica promoted since, say) is
    // still waiting to connect: the PING connects it (a Cluster's nodes queue commands until then). Before, it
    // answered "not connected" for as long as no session request reached that master: an instance that only gets
    // health probes reported down after every failover.
    await Promise.all(masters.map((node) => pingNode(node, timeoutMs, deadlines, lastError, true)));
    return;
  }
  await pingNode(client, timeoutMs, deadlines, lastError, false);
}

function pingNode(
  node: Redis,
  timeoutMs: number,
  deadlines: Deadlines,
  lastError: () => Error | undefined,
  connectsIfIdle: boolean,
): Promise<void> {
  const where = `Redis at ${node.options.host ?? 'localhost'}:${node.options.port ?? 6379}`;
  const idle = connectsIfIdle && node.status === 'wait';
  if (node.status !== 'ready' && node.status !== 'connect' && !idle) {
    return Promise.reject(notConnected(where, node.status, lastError()));
  }
  const reply = node.ping().then(
    () => undefined,
    (error: Error) => {
      throw new RedisOperationError(`${where} answered PING with an error: ${error.message}`, 'PING', {
        cause: withoutCommand(error),
      });
    },
  );
  return deadlines.bound(
    reply,
    timeoutMs,
    () =>
      new RedisOperationError(
        `${where} did not answer PING within ${timeoutMs} ms (operationTimeoutInMilliseconds).`,
        'PING',
      ),
  );
}

function notConnected(where: string, status: string, error: Error | undefined): RedisOperationError {
  const why = error ? `; last error: ${error.message}` : '';
  return new RedisOperationError(`${where} is not connected (${status}${why}).`, 'PING');
}
