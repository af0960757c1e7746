import type { Cluster, Redis } from 'ioredis';

/**
 * How long ioredis lets a connection the library closes finish before it destroys the socket (its
 * `disconnectTimeout`, 2 s by default), set on the connections the library opens. Its timer is never cleared when
 * the socket is gone already (a failed or timed-out start, a close while reconnecting), and held the process.
 */
export const DISCONNECT_TIMEOUT = 100;

/**
 * `operation`'s result, or undefined once `ms` passed without one (the operation goes on unwatched): a
 * Redis that stopped answering (a stopped process, a half-open connection) must not hold the app's shutdown.
 */
export async function settleWithin<T>(operation: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      operation,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes `client` with QUIT (its pending replies arrive first), or drops the connection when Redis does
 * not answer the QUIT within `ms` or refuses it.
 */
export async function quitWithin(client: Redis | Cluster, ms: number): Promise<void> {
  const quit = client.quit().then(
    () => true,
    () => false,
  );
  if ((await settleWithin(quit, ms)) !== true) client.disconnect();
}
