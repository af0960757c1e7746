import type { SessionModuleOptions } from './session-module.options.js';

/** What an object given as `store` or `cache` must have, and what it may have (functions when present). */
interface Shape {
  readonly option: 'store' | 'cache';
  readonly contract: string;
  readonly required: readonly string[];
  readonly optional: readonly string[];
  readonly fix: string;
}

const SHAPES: readonly Shape[] = [
  {
    option: 'store',
    contract: 'SessionStore',
    required: ['load', 'commit', 'refresh', 'remove'],
    optional: ['take', 'tryLock', 'renewLock', 'unlock', 'ping'],
    fix: 'Pass an instance of a class implementing SessionStore (or extending MemorySessionStore); see docs/API.md.',
  },
  {
    option: 'cache',
    contract: 'DistributedCache',
    required: ['get', 'set', 'refresh', 'remove'],
    optional: [],
    fix: 'Pass an instance of a class implementing DistributedCache, such as MemoryDistributedCache; see docs/API.md.',
  },
];

/**
 * The message for a `store` or `cache` option that is not an object with the contract's methods, or
 * undefined. Checked at startup: otherwise every request would fail later (a 503) or, worse, a
 * store whose `commit` is missing would answer every write and keep none of them.
 */
export function pluggableShapeProblem(
  options: Pick<SessionModuleOptions, 'store' | 'cache'>,
  subject = (option: string) => `SessionModule option ${option}`,
): string | undefined {
  for (const { option, contract, required, optional, fix } of SHAPES) {
    const value: unknown = options[option];
    if (value === undefined) continue;
    if (typeof value !== 'object' || value === null) {
      return `${subject(option)} must be a ${contract} object (got ${value === null ? 'null' : typeof value}). ${fix}`;
    }
    const methods = value as Record<string, unknown>;
    if (isExpressSessionStore(methods)) {
      return (
        `${subject(option)} is an express-session store (such as connect-redis's RedisStore or connect-pg-simple): ` +
        "it keeps whole sessions in express-session's format and cannot hold these. Use the redis option " +
        '(redis: { url }, or redis: { client } with an ioredis client) or postgres instead; see docs/migrating.md.'
      );
    }
    const missing = required.filter((name) => typeof methods[name] !== 'function');
    const wrong = optional.filter(
      (name) => methods[name] !== undefined && typeof methods[name] !== 'function',
    );
    if (missing.length > 0 || wrong.length > 0) {
      const what = [
        missing.length > 0 ? `missing ${missing.join(', ')}` : '',
        wrong.length > 0 ? `${wrong.join(', ')} not a function` : '',
      ].filter(Boolean);
      return (
        `${subject(option)} does not implement ${contract} (${what.join('; ')}): it needs the methods ` +
        `${required.join(', ')}${optional.length > 0 ? ` (optionally ${optional.join(', ')})` : ''}. ${fix}`
      );
    }
  }
  return undefined;
}

/** express-session's `Store` contract (get, set, destroy), which a migrating app may pass as it did to `session()`. */
function isExpressSessionStore(methods: Record<string, unknown>): boolean {
  return (
    typeof methods.destroy === 'function' &&
    typeof methods.get === 'function' &&
    typeof methods.set === 'function' &&
    typeof methods.refresh !== 'function' &&
    typeof methods.commit !== 'function'
  );
}
