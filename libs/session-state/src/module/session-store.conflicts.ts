import type { SessionModuleOptions } from './session-module.options.js';

type StoreOption = 'redis' | 'postgres' | 'cache' | 'store' | 'memory';

/**
 * Store options that cannot be given together, with what to do. `store` with `redis` or `cache` is
 * allowed: `store` holds the sessions and `redis` or `cache` is the app's injectable DistributedCache;
 * so is `postgres` with `cache` (PostgreSQL holds the sessions, `cache` is the injectable one).
 */
const CONFLICTS: readonly (readonly [StoreOption, StoreOption, string])[] = [
  ['redis', 'postgres', 'each would hold the sessions. Remove one of them.'],
  ['postgres', 'store', 'postgres builds the session store, which store replaces. Remove one of them.'],
  [
    'postgres',
    'memory',
    'memory configures the built-in memory store, which postgres replaces. Remove memory, or postgres to keep sessions in memory.',
  ],
  [
    'redis',
    'cache',
    'each would be the DistributedCache that holds the sessions. Remove one of them ' +
      '(to keep sessions in a store of your own next to Redis, give store instead of cache).',
  ],
  [
    'redis',
    'memory',
    'memory configures the built-in memory store, which redis replaces. Remove memory, or redis to keep sessions in memory.',
  ],
  [
    'cache',
    'memory',
    'memory configures the built-in memory store, which cache replaces. Remove memory, or cache to keep sessions in memory.',
  ],
  [
    'store',
    'memory',
    'memory configures the built-in memory store, which store replaces. Remove memory, or store to keep sessions in memory.',
  ],
];

/**
 * The message for the first pair of store options that exclude each other, or undefined when the
 * options name at most one store (or `store` with `redis` or `cache`, or `postgres` with `cache`, which are allowed).
 */
export function storeConflict(options: SessionModuleOptions): string | undefined {
  for (const [a, b, why] of CONFLICTS) {
    if (options[a] !== undefined && options[b] !== undefined) {
      return `SessionModule options ${a} and ${b} exclude each other: ${why}`;
    }
  }
  return undefined;
}
