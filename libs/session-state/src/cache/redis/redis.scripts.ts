/**
 * The Lua scripts behind every Redis operation that needs more than one command: each runs as one
 * EVALSHA, so it is one round trip and atomic. Loaded once per connection (ioredis falls back to
 * EVAL when a restarted server has forgotten them).
 */

/** Cache entry layout: a hash with `d` (data), `s` (sliding ms, optional), `a` (absolute epoch ms, optional). */
const SLIDE = `
local function slide(key, sliding, absolute, now)
  if not sliding then return true end
  local ttl = tonumber(sliding)
  if absolute then
    local left = tonumber(absolute) - now
    if left < ttl then ttl = left end
  end
  if ttl <= 0 then
    redis.call('DEL', key)
    return false
  end
  redis.call('PEXPIRE', key, ttl)
  return true
end
`;

/**
 * Ends every session script of the near cache (`...Tracked`) with a read of its key. Under client-side
 * caching (CLIENT TRACKING, default mode, NOLOOP), a write, even this connection's own, removes the key
 * from Redis's tracking table; a read made after it registers the connection's interest again, so
 * writes by other instances keep being invalidated. Without a near cache the plain scripts leave it
 * out (and the time-left reply), so Redis runs only what the session needs.
 */
const TRACK = `redis.call('EXISTS', KEYS[1])`;

/** A session commit's writes; PEXPIRE leaves a key that no longer exists (all removed) alone. */
// unpack() is limited by Lua's C stack (~8000 values): write in batches of 1000 arguments.
const COMMIT = `
local function batched(command, from, to)
  for i = from, to, 1000 do
    redis.call(command, KEYS[1], unpack(ARGV, i, math.min(i + 999, to)))
  end
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
local n = tonumber(ARGV[3])
if n > 0 then batched('HDEL', 4, 3 + n) end
if #ARGV >= 5 + n then batched('HSET', 4 + n, #ARGV) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])`;

export const REDIS_SCRIPTS = {
  /** KEYS: entry. ARGV: now (ms). Returns the data and slides the expiration: ASP.NET needs two trips. */
  cacheGet: {
    numberOfKeys: 1,
    lua: `${SLIDE}
local v = redis.call('HMGET', KEYS[1], 'd', 's', 'a')
if not v[1] then return false end
if not slide(KEYS[1], v[2], v[3], tonumber(ARGV[1])) then return false end
return v[1]`,
  },
  /** KEYS: entry. ARGV: now (ms). Slides the expiration without returning data. */
  cacheRefresh: {
    numberOfKeys: 1,
    lua: `${SLIDE}
local v = redis.call('HMGET', KEYS[1], 's', 'a')
if v[1] then slide(KEYS[1], v[1], v[2], tonumber(ARGV[1])) end
return 1`,
  },
  /** KEYS: entry. ARGV: data, ttl ms (0 = none), sliding ms or '', absolute epoch ms or ''. */
  cacheSet: {
    numberOfKeys: 1,
    lua: `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'a', ARGV[4]) end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`,
  },
  /** KEYS: session data hash. ARGV: idle ms. All fields, and the idle timeout slid, in one trip. */
  sessionLoad: {
    numberOfKeys: 1,
    lua: `
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return fields`,
  },
  /**
   * The near cache's load. KEYS: session data hash. ARGV: idle ms, skip ms. All fields, and the idle
   * timeout slid, in one trip; then the time left to live (ms). The slide is skipped while the time
   * left is within `skip` below the idle timeout: no write, so other instances' near-cache copies stay
   * valid. A key without a TTL, or with more than the idle timeout left (the timeout was lowered), is
   * always set to the idle timeout.
   */
  sessionLoadTracked: {
    numberOfKeys: 1,
    lua: `
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then
  local left = redis.call('PTTL', KEYS[1])
  if left < tonumber(ARGV[1]) - tonumber(ARGV[2]) or left > tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    left = tonumber(ARGV[1])
  end
  fields[#fields + 1] = left
end
${TRACK}
return fields`,
  },
  /** The near cache's refresh. KEYS: session data hash. ARGV: idle ms. Slides an existing session. */
  sessionRefreshTracked: {
    numberOfKeys: 1,
    lua: `
redis.call('PEXPIRE', KEYS[1], ARGV[1])
${TRACK}
return 1`,
  },
  /**
   * KEYS: session data hash. ARGV: idle ms, clear ('1'/'0'), number of removed fields n,
   * n removed field names, then field/value pairs to set. Only what changed is written.
   */
  sessionCommit: { numberOfKeys: 1, lua: `${COMMIT}\nreturn 1` },
  /** The near cache's commit: {@link REDIS_SCRIPTS.sessionCommit}, then the key tracked again. */
  sessionCommitTracked: { numberOfKeys: 1, lua: `${COMMIT}\n${TRACK}\nreturn 1` },
  /**
   * KEYS: lock. ARGV: token, ttl ms. Takes the lock for `token` if it is free, and answers 1 also when
   * `token` holds it already (its TTL renewed): a retry whose first try ran in Redis but whose reply
   * was lost (a timeout) finds its own lock instead of waiting for it to expire. 0: another token holds it.
   */
  lockAcquire: {
    numberOfKeys: 1,
    lua: `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`,
  },
  /** KEYS: lock. ARGV: token. Deletes the lock only when this request still owns it. */
  lockRelease: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  },
} as const;

export type RedisScriptName = keyof typeof REDIS_SCRIPTS;
