import type { PlatformAdapter } from './platform-adapter.js';

/** A request hook as Nest's adapters take it (`setOnRequestHook`). */
export type RequestHook = (
  request: unknown,
  response: unknown,
  done: (error?: unknown) => void,
) => void | Promise<void>;

/**
 * Installs the library's request entry as the adapter's request hook, ahead of the app's own: a hook the app set
 * before (the adapter keeps one, in `onRequestHook`) or sets later with `setOnRequestHook` runs after the entry, in
 * the request's context, instead of replacing it. Nest's adapters hold a single hook; without this, an app's
 * `setOnRequestHook` in main.ts was dropped silently (set before `init()`) or took every session down (after it).
 * With no app hook the entry is the hook itself: nothing added per request.
 */
export function enterFirst(adapter: PlatformAdapter, entry: RequestHook): void {
  const setHook = adapter.setOnRequestHook.bind(adapter);
  const install = (appHook: unknown): void =>
    setHook(typeof appHook === 'function' ? chained(adapter, entry, appHook as RequestHook) : entry);
  install((adapter as { onRequestHook?: unknown }).onRequestHook);
  adapter.setOnRequestHook = install;
}

/**
 * The entry, then the app's hook once the entry is done, under the adapter's own rules for one hook: errors, throws
 * and rejections go to `done`; a promise that resolves continues the request on Fastify (its adapter treats an async
 * hook so), not on Express (whose hook calls `done`).
 */
function chained(adapter: PlatformAdapter, entry: RequestHook, appHook: RequestHook): RequestHook {
  const resolvingContinues = adapter.getType() === 'fastify';
  return (request, response, done) =>
    entry(request, response, (error?: unknown) => {
      if (error !== undefined) return done(error);
      try {
        const result = appHook.call(adapter, request, response, done);
        if (result && typeof result.then === 'function') {
          result.then(resolvingContinues ? () => done() : undefined, (reason: unknown) =>
            done(reason || new Error('Request hook failed')),
          );
        }
      } catch (thrown) {
        done(thrown || new Error('Request hook failed'));
      }
    });
}
