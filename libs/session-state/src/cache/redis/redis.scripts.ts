import { USER_SESSION_SCRIPTS } from '../../users/redis/redis-user-session.scripts.js';
import { commitReplyLua, PACK_FIELDS_LUA } from './redis-session.replies.js';

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
 * A session commit. KEYS: the session's data hash. In order, and all inside one atomic script:
 * 0. Guard (bound sessions, see users/user-session.fields.ts guardedSessionId): ARGV[2] `g<id>` instead
 *    of '0' (a delta), `c<id>` instead of '1' (a clear), means "apply only while the stored session
 *    carries this id". A session revoked (deleted) or expired since the request loaded it is not brought
 *    back by its late commit. Reply status 4; 5 when the session moved (the mark says `m`, below).
 * 1. Deadline: `TIME` against ARGV[3] (Redis's own clock, in ms; the app derives it from this server's
 *    TIME, see RedisConnection.commitDeadline): a commit that reaches Redis after the app stopped
 *    waiting for it (its request answered 503) applies nothing. Reply status 0.
 * 1a. Lock (`session.lock`, see SessionChanges.lockToken): ARGV[6], when not empty, is the token of the
 *    lock the request took; the commit applies only while the session's lock key still holds it. Reply
 *    status 6 (the lock expired, and another request may have written the session since).
 * 1b. Moved or abandoned (see SessionChanges.ofStoredSession; before the limits, so a late commit is told
 *    it moved rather than that it is over one): ARGV[2] `e` (a delta) or `f` (a clear) of a session the
 *    request loaded from the store. When the hash no longer exists and the mark says `m`
 *    (`regenerate()` moved it) the commit applies nothing, status 5; `a` (`abandon()`), status 4. Without a
 *    mark (a delta emptied the session, or it expired) it applies as '0'/'1' would. Whether the hash exists
 *    is known for free on the common path (a field this commit replaces or removes is there, or HLEN is
 *    read for the key limit anyway); else one EXISTS.
 *    ARGV[2] `n<ms>` (a delta) or `o<ms>` (a clear) of a session the request starts under a key its load found
 *    empty (see SessionChanges.refuseIfMovedWithinMs): when the hash does not exist and the mark says `m` with
 *    what has run of its lifetime (ARGV[1], the idle timeout, minus its PTTL) at most `<ms>`, status 5; any other
 *    mark (or one kept longer than ARGV[1]) lets it apply as '0'/'1'.
 * 2. Limits, on what is stored, not on what the request loaded: the resulting number of keys (`\0id`
 *    not counted) against ARGV[4] and bytes (field names + values) against ARGV[5]. A commit that
 *    would end over a limit and larger than before applies nothing: status 2 (detail: keys) / 3 (bytes). A
 *    commit that leaves the session no larger always applies, even over a limit.
 * 3. The delta: DEL when cleared, HDEL removed fields, HSET set ones. Never a DEL for "this request
 *    removed its last key": concurrent requests' fields stay.
 * 4. Empty after the delta (no field, or only the id): the hash is deleted; otherwise PEXPIRE.
 *    Reply status 1. The detail of 0, 1, 4, 5 and 6 is `now` (Redis ms): it keeps the app's estimate of Redis's
 *    clock fresh. Status and detail go in one integer, `detail * 8 + status` (redis-session.replies.ts).
 * Extra commands over a plain write, on the common path (values replaced, nothing removed): TIME and
 * one HSTRLEN per changed field. More only when needed: HEXISTS for a field whose HSTRLEN is 0 (new or
 * empty); HLEN + HEXISTS when keys are added (the key limit); HKEYS + one HSTRLEN per field when the
 * bytes grow (nothing stored keeps a running total); HLEN after a removal (is it empty now?).
 */
/**
 * The ended mark's key, `{<app>_<sessionKey>}_Ended`, from the data key `key` (`..._Data`, redis-keys.ts), in
 * Lua. Not a declared key: a script that declared it would be refused (TRYAGAIN) while its slot migrates
 * between cluster nodes, since the mark seldom exists where the data is; the commit reads it only when the
 * data key is missing. In the same slot (the hash tag), so a cluster serves it on the same node.
 */
const ENDED_KEY_LUA = `string.sub(key, 1, -6) .. '_Ended'`;

/**
 * Refuses (the OOM error) when Redis is full under `noeviction`. Redis checks `maxmemory` for a script's commands
 * only until its first write: an `HDEL` or `DEL` first let the `HSET`s after it grow a full Redis (a probe). `LPUSHX`
 * is checked for memory and writes nothing here: on the session's `_Ended` key (in the slot, in the ACL patterns a
 * session needs), absent as a rule (0), else a string (WRONGTYPE). Redis 6 prefixes the error `pcall` returns with
 * the script's name and line, so the text is searched, and the reply is the plain OOM error the app knows.
 */
const REFUSE_WHEN_FULL = `local full = redis.pcall('LPUSHX', ${ENDED_KEY_LUA}, '')
if type(full) == 'table' and full.err and string.find(full.err, 'OOM command not allowed', 1, true) then
  return redis.error_reply("OOM command not allowed when used memory > 'maxmemory'.")
end`;

/**
 * The session lock's key, `{<app>_<sessionKey>}_Lock`, from the data key, in Lua: undeclared, in the same slot,
 * as {@link ENDED_KEY_LUA}. Read by a commit, take or end made under `session.lock` only.
 */
const LOCK_KEY_LUA = `string.sub(key, 1, -6) .. '_Lock'`;
/**
 * Lua: ends the take or end script with 0, before it writes anything, when its token (`ARGV[2]`, '': none) no
 * longer holds the session's lock (see EndedSessionMark.lockToken): a request whose lock expired neither moves
 * nor deletes what the request that took the lock after it wrote.
 */
const LOCK_LOST_RETURNS_0 = `if ARGV[2] ~= '' and redis.call('GET', ${LOCK_KEY_LUA}) ~= ARGV[2] then return 0 end`;
/**
 * ARGV[3], when given and not '0', is the deadline (Redis ms, as the commit's): a script that runs after it (the app
 * answered 503) returns `reply` (Lua; `now` is Redis's time in ms) before it takes, deletes or marks anything.
 */
const lateReturns = (reply: string) => `if ARGV[3] and ARGV[3] ~= '0' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now > tonumber(ARGV[3]) then return ${reply} end
end`;
/** For `regenerate()`'s take and `abandon()`'s end: -1 when late. */
const LATE_RETURNS_MINUS_1 = lateReturns('-1');

// unpack() is limited by Lua's C stack (~8000 values): write in batches of 1000 arguments.
const COMMIT = `
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] ~= '0' and now > tonumber(ARGV[3]) then return ${commitReplyLua(0, 'now')} end
if ARGV[6] ~= '' and redis.call('GET', ${LOCK_KEY_LUA}) ~= ARGV[6] then return ${commitReplyLua(6, 'now')} end
local ID = '\\0id'
local mode = string.byte(ARGV[2])
if (mode == 103 or mode == 99) and redis.call('HGET', key, ID) ~= string.sub(ARGV[2], 2) then
  if redis.call('GET', ${ENDED_KEY_LUA}) == 'm' and redis.call('EXISTS', key) == 0 then return ${commitReplyLua(5, 'now')} end
  return ${commitReplyLua(4, 'now')}
end
local cleared = mode == 49 or mode == 99 or mode == 102 or mode == 111
local stored, present = mode == 101 or mode == 102, false
local fresh = (mode == 110 or mode == 111) and tonumber(string.sub(ARGV[2], 2))
local n = tonumber(ARGV[7])
local first, last = 8 + n, #ARGV
local addKeys, addBytes, setsUser = 0, 0, false
if cleared then
  for i = first, last, 2 do
    if ARGV[i] ~= ID then addKeys = addKeys + 1 setsUser = true end
    addBytes = addBytes + #ARGV[i] + #ARGV[i + 1]
  end
else
  for i = 8, 7 + n do
    local f = ARGV[i]
    local len = redis.call('HSTRLEN', key, f)
    if len > 0 or redis.call('HEXISTS', key, f) == 1 then
      present = true
      if f ~= ID then addKeys = addKeys - 1 end
      addBytes = addBytes - #f - len
    end
  end
  for i = first, last, 2 do
    local f = ARGV[i]
    if f ~= ID then setsUser = true end
    local len = redis.call('HSTRLEN', key, f)
    if len > 0 or redis.call('HEXISTS', key, f) == 1 then
      present = true
      addBytes = addBytes + #ARGV[i + 1] - len
    else
      if f ~= ID then addKeys = addKeys + 1 end
      addBytes = addBytes + #f + #ARGV[i + 1]
    end
  end
end
local count = (addKeys > 0 or cleared) and redis.call('HLEN', key)
if (stored or fresh) and not present and (count or redis.call('EXISTS', key)) == 0 then
  local ended = redis.call('GET', ${ENDED_KEY_LUA})
  if fresh then
    if ended == 'm' then
      local left, idle = redis.call('PTTL', ${ENDED_KEY_LUA}), tonumber(ARGV[1])
      if left > 0 and left <= idle and idle - left <= fresh then return ${commitReplyLua(5, 'now')} end
    end
  elseif ended == 'm' then return ${commitReplyLua(5, 'now')}
  elseif ended == 'a' then return ${commitReplyLua(4, 'now')} end
end
if count then
  local before = count
  if before > 0 and redis.call('HEXISTS', key, ID) == 1 then before = before - 1 end
  local after = cleared and addKeys or before + addKeys
  if after > tonumber(ARGV[4]) and after > before then return ${commitReplyLua(2, 'after')} end
end
if addBytes > 0 then
  local before = 0
  for _, field in ipairs(redis.call('HKEYS', key)) do
    before = before + #field + redis.call('HSTRLEN', key, field)
  end
  local after = cleared and addBytes or before + addBytes
  if after > tonumber(ARGV[5]) and after > before then return ${commitReplyLua(3, 'after')} end
end
if last >= first and (cleared or n > 0) then
  ${REFUSE_WHEN_FULL}
end
if cleared then redis.call('DEL', key) end
for i = 8, 7 + n, 1000 do redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, 7 + n))) end
for i = first, last, 1000 do redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, last))) end
local empty = false
if n > 0 or cleared or not setsUser then
  local left = redis.call('HLEN', key)
  empty = left == 0 or (left == 1 and redis.call('HEXISTS', key, ID) == 1)
  if empty and left > 0 then redis.call('DEL', key) end
end
if not empty then redis.call('PEXPIRE', key, ARGV[1]) end`;

export const REDIS_SCRIPTS = {
  ...USER_SESSION_SCRIPTS,
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
    // HSET first: Redis checks maxmemory until a script's first write (a DEL first let a full Redis take it).
    lua: `
local set = redis.pcall('HSET', KEYS[1], 'd', ARGV[1])
if type(set) == 'table' and set.err then
  if string.find(set.err, 'OOM command not allowed', 1, true) then
    return redis.error_reply("OOM command not allowed when used memory > 'maxmemory'.")
  end
  if not string.find(set.err, 'WRONGTYPE', 1, true) then return redis.error_reply(set.err) end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'd', ARGV[1])
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[3]) else redis.call('HDEL', KEYS[1], 's') end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'a', ARGV[4]) else redis.call('HDEL', KEYS[1], 'a') end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('PERSIST', KEYS[1]) end
return 1`,
  },
  /**
   * KEYS: session data hash. ARGV: idle ms. All fields (packed when small, else HGETALL's array:
   * redis-session.replies.ts), and the idle timeout slid, in one trip; nil for no session.
   */
  sessionLoad: {
    numberOfKeys: 1,
    lua: `${PACK_FIELDS_LUA}
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return packFields(fields) or fields`,
  },
  /**
   * KEYS: session data hash. ARGV: how long to keep the ended mark (ms; '0': none), lock token ('': none),
   * deadline (Redis ms; '0' or absent: none), refuse window (ms; '' or absent: none).
   * Deletes the session and returns what it held (packed as `sessionLoad`'s reply), in one step: what
   * `regenerate()` moves to the new key; leaves the mark `m`, so a late commit of a request that loaded the
   * session under this key applies nothing (the commit's step 1b). Nil for no session; 0, and nothing taken or
   * marked, when the token no longer holds the session's lock; -1, and nothing either, past the deadline; -2, and
   * nothing either, when there is no session and a mark `m` left at most the refuse window ago (its age: ARGV[1]
   * minus its PTTL; see EndedSessionMark.refuseIfMovedWithinMs).
   */
  sessionTake: {
    numberOfKeys: 1,
    lua: `${PACK_FIELDS_LUA}
local key = KEYS[1]
${LATE_RETURNS_MINUS_1}
${LOCK_LOST_RETURNS_0}
local fields = redis.call('HGETALL', key)
if #fields == 0 and ARGV[4] and ARGV[4] ~= '' and ARGV[1] ~= '0' then
  local ended = ${ENDED_KEY_LUA}
  if redis.call('GET', ended) == 'm' then
    local left, idle = redis.call('PTTL', ended), tonumber(ARGV[1])
    if left > 0 and left <= idle and idle - left <= tonumber(ARGV[4]) then return -2 end
  end
end
if ARGV[1] ~= '0' then redis.call('SET', ${ENDED_KEY_LUA}, 'm', 'PX', ARGV[1]) end
if #fields == 0 then return false end
redis.call('DEL', KEYS[1])
return packFields(fields) or fields`,
  },
  /**
   * KEYS: session data hash. The ended mark under its key (`m` moved, `a` abandoned) and the ms it is kept still
   * (PTTL); nil without one. Undeclared key in the data key's slot, as the commit reads it.
   */
  sessionEnding: {
    numberOfKeys: 1,
    lua: `
local key = KEYS[1]
local ended = ${ENDED_KEY_LUA}
local mark = redis.call('GET', ended)
if not mark then return false end
return {mark, redis.call('PTTL', ended)}`,
  },
  /**
   * KEYS: session data hash. ARGV: how long to keep the mark (ms; '0': none), lock token ('': none), deadline
   * (Redis ms; '0' or absent: none). Leaves the ended mark `a` (`abandon()`), then deletes the session: a late
   * commit of a request that loaded it applies nothing.
   * 1; 0, and nothing deleted or marked, when the token no longer holds the session's lock; -1, and nothing
   * either, past the deadline.
   */
  sessionEnd: {
    numberOfKeys: 1,
    lua: `
local key = KEYS[1]
${LATE_RETURNS_MINUS_1}
${LOCK_LOST_RETURNS_0}
if ARGV[1] ~= '0' then redis.call('SET', ${ENDED_KEY_LUA}, 'a', 'PX', ARGV[1]) end
redis.call('DEL', key)
return 1`,
  },
  /**
   * The near cache's load. KEYS: session data hash. ARGV: idle ms, skip ms. The time left to live (ms,
   * a big-endian double) then all fields packed, or for a large session HGETALL's array then the time
   * left (redis-session.replies.ts); the idle timeout slid, in one trip; nil for no session. The slide is skipped while the time
   * left is within `skip` below the idle timeout: no write, so the near-cache copies of this instance and the
   * others stay valid (a slide, as any write, invalidates them: see RedisInvalidations). A key without a TTL, or with more than the idle timeout left (the timeout was lowered), is
   * always set to the idle timeout.
   */
  sessionLoadTracked: {
    numberOfKeys: 1,
    lua: `${PACK_FIELDS_LUA}
local fields = redis.call('HGETALL', KEYS[1])
local reply = false
if #fields > 0 then
  local left = redis.call('PTTL', KEYS[1])
  if left < tonumber(ARGV[1]) - tonumber(ARGV[2]) or left > tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    left = tonumber(ARGV[1])
  end
  local packed = packFields(fields)
  if packed then
    reply = struct.pack('>d', left) .. packed
  else
    fields[#fields + 1] = left
    reply = fields
  end
end
return reply`,
  },
  /**
   * KEYS: session data hash. ARGV: idle ms, mode ('0' a delta, '1' a clear, see commitMode), deadline
   * (Redis epoch ms, 0: none), maxKeys, maxSessionBytes, lock token ('': none), number of removed fields n,
   * n removed field names, then field/value pairs to set. Only what changed is written. Reply: `detail * 8 + status`, see COMMIT.
   */
  sessionCommit: { numberOfKeys: 1, lua: `${COMMIT}\nreturn ${commitReplyLua(1, 'now')}` },
  /**
   * KEYS: lock. ARGV: token, ttl ms, deadline (Redis ms, as the commit's; '0' or absent: none). Takes the lock for
   * `token` if it is free, and answers 1 also when `token` holds it already (its TTL renewed): a retry whose first
   * try ran in Redis but whose reply was lost (a timeout) finds its own lock instead of waiting for it to expire.
   * 0: another token holds it. Negative: past the deadline, nothing taken, minus Redis's time (epoch ms, which
   * corrects the app's estimate of Redis's clock, as a late commit's reply does): a try that reaches Redis after the
   * request stopped waiting for it (a socket dropped with the try on its way, delivered late) cannot take the lock
   * after the request released it, for a whole ttl.
   */
  lockAcquire: {
    numberOfKeys: 1,
    lua: `
${lateReturns('-now')}
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`,
  },
  /**
   * KEYS: lock. ARGV: token, ttl ms. Extends the lock when `token` still holds it (1); never takes a free
   * one (0): a holder whose lock expired, and which another request may have taken and released since,
   * must not get it back.
   */
  lockRenew: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
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
