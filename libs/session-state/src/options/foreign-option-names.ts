/**
 * Options of express-session, connect-redis and cookie sessions that have no counterpart here, by the name
 * lower-cased, each with what to do instead (docs/migrating.md): an app moving from them gets that at startup
 * rather than the list of valid names.
 */
const MIGRATING = 'See docs/migrating.md.';

/** express-session's own options, found at the top level or in `session`. */
export const EXPRESS_SESSION_OPTIONS: Readonly<Record<string, string>> = {
  resave:
    "express-session's resave is not needed: a commit writes only what the request changed, and nothing when it " +
    `changed nothing. Remove it. ${MIGRATING}`,
  saveuninitialized:
    "express-session's saveUninitialized is not needed: a session is stored, and its cookie sent, only once it " +
    `holds a value (consent: session.cookie.isEssential and hasConsent). Remove it. ${MIGRATING}`,
  rolling:
    "express-session's rolling is not needed: the server slides a session's expiry (session.idleTimeout) on every " +
    `request; the cookie lasts until the browser closes. Remove it. ${MIGRATING}`,
  proxy:
    "express-session's proxy is the platform's setting here: Express app.set('trust proxy', ...), Fastify " +
    `{ trustProxy }, with session.cookie.securePolicy. ${MIGRATING}`,
  genid: `express-session's genid has no counterpart: session keys are drawn by the module (CSPRNG, 192 bits). ${MIGRATING}`,
  unset: `express-session's unset has no counterpart: session.abandon() ends a session. ${MIGRATING}`,
  ttl: `connect-redis's ttl is session.idleTimeout here (ms, sliding). ${MIGRATING}`,
};

/**
 * express-session's options that sit at the top level here, found in `session` (where `session({ ... })` took them).
 * At the top level `secret` gets "did you mean secrets?" and `store` is this module's own.
 */
export const EXPRESS_SESSION_OPTIONS_IN_SESSION: Readonly<Record<string, string>> = {
  ...EXPRESS_SESSION_OPTIONS,
  secret:
    "express-session's secret is the top-level secrets here: an array of secrets of at least 32 bytes of entropy " +
    `(the first signs, the others only verify). express-session's cookies are not read in any case. ${MIGRATING}`,
  store:
    "express-session's store has no counterpart in session: sessions are kept by the top-level redis " +
    `({ url } or { client } with an ioredis client) or postgres option, or in memory by default. ${MIGRATING}`,
};

/** express-session's and connect-redis's options found at the top level. */
export const EXPRESS_SESSION_OPTIONS_AT_ROOT: Readonly<Record<string, string>> = {
  ...EXPRESS_SESSION_OPTIONS,
  prefix:
    "connect-redis's prefix has no counterpart at the top level: Redis keys are named by redis.applicationName " +
    `(default nest). Sessions stored by connect-redis are not read in any case. ${MIGRATING}`,
};

/** What to do instead of a cookie expiry. */
const PERSISTENT_COOKIE =
  'is not supported: the cookie has no expiry, it ends when the browser closes (ASP.NET Core refuses it too). How ' +
  'long a session lives is session.idleTimeout, on the server; a "remember me" sign-in needs a cookie of its own. ' +
  MIGRATING;

/** Cookie expiry options, found in `session.cookie` or `tempData.cookie`. */
export const COOKIE_EXPIRY_OPTIONS: Readonly<Record<string, string>> = {
  maxage: `maxAge ${PERSISTENT_COOKIE}`,
  expires: `expires ${PERSISTENT_COOKIE}`,
};

/** connect-redis's options, found in `redis`. */
export const CONNECT_REDIS_OPTIONS: Readonly<Record<string, string>> = {
  ttl: `connect-redis's ttl is session.idleTimeout here (ms, sliding). ${MIGRATING}`,
  disabletouch:
    "connect-redis's disableTouch has no counterpart: a request that does not touch the session slides its expiry " +
    `at most once per session.slideSkipWindow. ${MIGRATING}`,
  serializer: `connect-redis's serializer has no counterpart: values are stored as JSON, field by field. ${MIGRATING}`,
};
