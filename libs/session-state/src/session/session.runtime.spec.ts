import { resolveSessionOptions } from '../module/session-options.resolver.js';
import { KeyRing } from '../protection/key-ring.js';
import { SessionRuntime } from './session.runtime.js';
import { MemorySessionStore } from './stores/memory-session.store.js';

describe('SessionRuntime', () => {
  it('names a store failure after close as the shutdown, not an outage (a request the module outlived)', async () => {
    const runtime = new SessionRuntime(
      resolveSessionOptions({ session: { lock: true } }),
      new MemorySessionStore(),
      KeyRing.ephemeral(),
    );
    const failure = new Error('Connection is closed.');
    expect(runtime.failureText(failure)).toBe('Connection is closed.');
    await runtime.close();
    expect(runtime.failureText(failure)).toBe(
      'Connection is closed. (the application is shutting down: the session module had closed its store connection)',
    );
    // And a release that fails then is not tried again (the close released the locks it knew of).
    expect(runtime.lockReleases.retry('k', 't', 30_000)).toBe(false);
  });
});
