/**
 * Cleanup registry for everything the Redis harness starts (servers, clusters, monitors).
 *
 * How a spec uses it:
 *
 *   let server: RedisServerProcess;
 *   beforeAll(async () => { server = await RedisServerProcess.start(); });
 *   afterAll(() => server.stop());
 *
 * As a safety net, when this module is loaded inside Jest it registers `afterAll(stopAllRedis)` itself,
 * so whatever a test file started is stopped when that file ends, even if a test or a hook failed
 * (Jest gives every test file its own module registry, hence its own registry here). A spec may also
 * call `afterAll(stopAllRedis)` explicitly.
 *
 * If the test process dies without running the hooks (Ctrl-C, SIGKILL, crash), the kernel SIGKILLs every
 * redis-server child (they run under `setpriv --pdeathsig SIGKILL`); their temp dirs stay in /tmp
 * (`redis-harness-*`). Outside Jest a process 'exit' handler also kills them and removes the dirs
 * (inside Jest it never fires: test code only sees a sandboxed copy of `process`).
 */

export interface Stoppable {
  stop(): Promise<void>;
  /** Synchronous last-resort cleanup, called from process.on('exit'). */
  killSync?(): void;
}

const live = new Set<Stoppable>();

function onExit(): void {
  for (const item of live) {
    try {
      item.killSync?.();
    } catch {
      // exiting anyway
    }
  }
}

/** Tracks `item` until it is unregistered; returns the unregister function. */
export function registerForCleanup(item: Stoppable): () => void {
  if (live.size === 0) process.on('exit', onExit);
  live.add(item);
  return () => {
    if (live.delete(item) && live.size === 0) process.off('exit', onExit);
  };
}

/** Stops, in parallel, everything the harness started and that is still running. */
export async function stopAllRedis(): Promise<void> {
  const items = [...live].reverse();
  const results = await Promise.allSettled(items.map((item) => item.stop()));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    throw new AggregateError(
      failures.map((f) => f.reason as unknown),
      `stopAllRedis: ${failures.length} item(s) failed to stop`,
    );
  }
}

// Safety net inside Jest (see above). Outside Jest (e.g. a bench script) `afterAll` does not exist.
if (typeof afterAll === 'function') {
  try {
    afterAll(() => stopAllRedis());
  } catch {
    // Loaded lazily from inside a test, where hooks cannot be added: the spec's own afterAll applies.
  }
}
