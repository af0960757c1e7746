// The `limit-redis` configuration of the benchmark: the fewest operations a Redis-backed session can do,
// written by hand without nest-session-state (no module, no middleware, no interceptor, no change
// tracking, no size limits, no deadlines or retries), so each ratio of the library can also be read
// against what is physically possible on this machine:
//   - the cookie is `<id>.<HMAC-SHA256(secret, id)>` (base64url), verified on every request that uses
//     the session (timing-safe comparison), written only when a session is created;
//   - loading is one round trip: a two-line Lua script by EVALSHA that GETs the value and slides its
//     expiry (PEXPIRE) in the same call;
//   - writing is one round trip: SET with PX (the whole value: one counter);
//   - a route that does not use the session costs nothing (no cookie parsing, no Redis call).
// One ioredis client as the library creates its own (no auto-pipelining, no offline queue), whose socket
// is corked until the event loop has run every callback ready now (setImmediate), so the commands of
// requests that arrived together go out in one write syscall (as the library does, and node-redis for
// connect-redis: measured without it on Node 24, `bench:syscalls`, the limit made one `write` per command,
// 2 per rmw, and took more CPU per request than nss-redis). Used by bench/server.mjs (`limit-redis`, Express)
// and bench/fastify-server.mjs (`limit-redis-fastify`): the routes call `load(exchange)` / `save(exchange,
// state)` from the controller with what their platform hands them (Express's `req`, Fastify's reply), and
// the server's `http` adapter says where that has the cookie header and how it takes a Set-Cookie, so
// both platforms run the same session code.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Redis } from 'ioredis';

const COOKIE_NAME = '.Nest.Session';
const IDLE_TIMEOUT_MS = 20 * 60 * 1000; // as nest-session-state's default idleTimeout
const LOAD_AND_SLIDE = `local v = redis.call('GET', KEYS[1])
if v then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return v`;

/**
 * Session state of one request: `id` (undefined until created), `count` (the value).
 * @param http `{ cookieHeader(exchange), setCookie(exchange, value) }`: the platform's request and response
 *   as the route's `exchange` gives them (one property read and one header set: nothing else to adapt)
 */
export async function createLimitSessions({ redisUrl, secret, http }) {
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: false,
  });
  await client.connect();
  const sha = await client.script('LOAD', LOAD_AND_SLIDE);
  const key = Buffer.from(secret, 'utf8');
  const ttl = String(IDLE_TIMEOUT_MS);
  const sign = (id) => createHmac('sha256', key).update(id).digest('base64url');
  let corked = false;
  /** Holds this turn's commands in the socket; one write when the turn's callbacks have run. */
  function coalesce() {
    if (corked) return;
    const stream = client.stream;
    corked = true;
    stream.cork();
    setImmediate(() => {
      corked = false;
      stream.uncork();
    });
  }

  /** The verified session id of the request's cookie, or undefined. */
  function cookieId(exchange) {
    const header = http.cookieHeader(exchange);
    if (header === undefined) return undefined;
    const start = header.indexOf(`${COOKIE_NAME}=`);
    if (start < 0) return undefined;
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const value = header.slice(start + COOKIE_NAME.length + 1, end);
    const dot = value.indexOf('.');
    if (dot < 0) return undefined;
    const id = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), 'utf8');
    const expected = Buffer.from(sign(id), 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected) ? id : undefined;
  }

  /** Loads (and slides) the request's session: one EVALSHA, or nothing without a valid cookie. */
  async function load(exchange) {
    const id = cookieId(exchange);
    if (id === undefined) return { id: undefined, count: undefined };
    let value;
    coalesce();
    try {
      value = await client.evalsha(sha, 1, `limit:${id}`, ttl);
    } catch (error) {
      if (!String(error?.message).startsWith('NOSCRIPT')) throw error;
      value = await client.eval(LOAD_AND_SLIDE, 1, `limit:${id}`, ttl);
    }
    return { id, count: value === null ? undefined : Number(value) };
  }

  /** Writes the session (one SET ... PX) and, for a new one, its cookie; before the response is sent. */
  async function save(exchange, state) {
    let { id } = state;
    if (id === undefined) {
      id = randomBytes(16).toString('base64url');
      http.setCookie(exchange, `${COOKIE_NAME}=${id}.${sign(id)}; path=/; samesite=lax; httponly`);
    }
    coalesce();
    await client.set(`limit:${id}`, String(state.count), 'PX', ttl);
  }

  return { load, save, close: () => client.quit().then(() => undefined) };
}

/**
 * The `/rmw` and `/read` handlers of both servers' limit controllers, given the route's exchange: load,
 * change, save before returning (the response waits for the write, as the library's commit).
 */
export function limitHandlers(sessions) {
  return {
    async rmw(exchange) {
      const state = await sessions.load(exchange);
      state.count = (state.count ?? 0) + 1;
      await sessions.save(exchange, state);
      return { count: state.count };
    },
    async read(exchange) {
      return { count: (await sessions.load(exchange)).count ?? 0 };
    },
  };
}
