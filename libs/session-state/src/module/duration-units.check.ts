import type { ResolvedSessionOptions } from './session-options.resolver.js';

/** Under this a session's idle timeout or a lock's TTL is almost surely seconds or minutes written as milliseconds. */
const SHORTEST_LIKELY_MS = 1000;

/**
 * Warnings for durations that read like seconds or minutes given to an option in milliseconds (`idleTimeout: 20`
 * for 20 minutes): such a session expires before the visitor's next request, or such a lock is renewed every few
 * milliseconds. Not refused: a test may want a session that expires at once.
 */
export function durationUnitWarnings(options: ResolvedSessionOptions): string[] {
  const warnings: string[] = [];
  const { idleTimeout, lock } = options;
  if (idleTimeout < SHORTEST_LIKELY_MS) {
    warnings.push(
      `SessionModule option session.idleTimeout is ${idleTimeout} ms: durations are in milliseconds, so a session ` +
        `expires ${idleTimeout} ms after its last request. For ${idleTimeout} seconds write ${idleTimeout * 1000} ` +
        `(${idleTimeout} * 1000); for ${idleTimeout} minutes, ${idleTimeout * 60_000} (${idleTimeout} * 60_000).`,
    );
  }
  if (lock && lock.ttl < SHORTEST_LIKELY_MS) {
    warnings.push(
      `SessionModule option session.lock.ttl is ${lock.ttl} ms: durations are in milliseconds, so the lock is renewed ` +
        `every ${Math.max(1, Math.floor(lock.ttl / 3))} ms while a request runs. For ${lock.ttl} seconds write ` +
        `${lock.ttl * 1000} (${lock.ttl} * 1000); for ${lock.ttl} minutes, ${lock.ttl * 60_000} (${lock.ttl} * 60_000).`,
    );
  }
  return warnings;
}
