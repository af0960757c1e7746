// Which platform each benchmark configuration runs on, and what its rows are compared with: Express
// configurations with `baseline`, `limit-redis` and `express-session-redis` (bench/server.mjs), Fastify
// configurations with `fastify-baseline`, `limit-redis-fastify` and `fastify-session-redis`
// (bench/fastify-server.mjs); and which of them talk to the bench's private Redis. See bench/README.md.

/** The Fastify configurations, in the order they are listed. */
export const FASTIFY_CONFIGS = [
  'fastify-baseline',
  'limit-redis-fastify',
  'nss-memory-fastify',
  'nss-redis-fastify',
  'fastify-session-redis',
];

/**
 * `--reference` rows (bench/run.mjs): `<config>-ref` is `<config>` on a reference build of the library, measured
 * in the same run, interleaved with it.
 */
export const REFERENCE_SUFFIX = '-ref';

/** The configuration a row runs: itself, or for a reference row the configuration it mirrors. */
export const baseConfigOf = (config) =>
  config.endsWith(REFERENCE_SUFFIX) ? config.slice(0, -REFERENCE_SUFFIX.length) : config;

export const isFastify = (config) => FASTIFY_CONFIGS.includes(baseConfigOf(config));

/** The no-session app of the configuration's platform: the denominator of its "x baseline" ratios. */
export const baselineOf = (config) => (isFastify(config) ? 'fastify-baseline' : 'baseline');

/** The Redis peer of the configuration's platform: the denominator of its "x peer" ratio. */
export const peerOf = (config) => (isFastify(config) ? 'fastify-session-redis' : 'express-session-redis');

/**
 * The hand-written Redis session of the configuration's platform (bench/limit.mjs): the fewest operations,
 * against which its Redis rows' ratios are read ("÷ limit").
 */
export const limitOf = (config) => (isFastify(config) ? 'limit-redis-fastify' : 'limit-redis');

/** A no-session app (gets fake cookies, has no counter to check). */
export const isBaseline = (config) => config.startsWith('baseline') || config === 'fastify-baseline';

/** The server script bench/run.mjs and bench/instructions.mjs start for the configuration. */
export const serverScriptOf = (config) => (isFastify(config) ? 'fastify-server.mjs' : 'server.mjs');

/** The configurations on the bench's private (single) Redis; nss-cluster has a cluster of its own. */
export const REDIS_CONFIGS = new Set([
  'limit-redis',
  'nss-redis',
  'nss-redis-app',
  'nss-redis-near',
  'express-session-redis',
  'limit-redis-fastify',
  'nss-redis-fastify',
  'fastify-session-redis',
]);

export const usesRedis = (config) => REDIS_CONFIGS.has(baseConfigOf(config));
