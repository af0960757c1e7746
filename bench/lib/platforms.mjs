// Which platform each benchmark configuration runs on, and what its rows are compared with: Express
// configurations with `baseline` and `express-session-redis` (bench/server.mjs), Fastify configurations
// with `fastify-baseline` and `fastify-session-redis` (bench/fastify-server.mjs). See bench/README.md.

/** The Fastify configurations, in the order they are listed. */
export const FASTIFY_CONFIGS = [
  'fastify-baseline',
  'nss-memory-fastify',
  'nss-redis-fastify',
  'fastify-session-redis',
];

export const isFastify = (config) => FASTIFY_CONFIGS.includes(config);

/** The no-session app of the configuration's platform: the denominator of its "x baseline" ratios. */
export const baselineOf = (config) => (isFastify(config) ? 'fastify-baseline' : 'baseline');

/** The Redis peer of the configuration's platform: the denominator of its "x peer" ratio. */
export const peerOf = (config) => (isFastify(config) ? 'fastify-session-redis' : 'express-session-redis');

/** A no-session app (gets fake cookies, has no counter to check). */
export const isBaseline = (config) => config.startsWith('baseline') || config === 'fastify-baseline';

/** The script bench/run.mjs forks for the configuration. */
export const serverScriptOf = (config) => (isFastify(config) ? 'fastify-server.mjs' : 'server.mjs');
