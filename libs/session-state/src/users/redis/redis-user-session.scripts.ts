/** Lua: every entry of the index (KEYS[1] zset, KEYS[2] hash) as id, expiry score, record JSON ('' when missing). */
const READ_INDEX = `
local out = {}
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], ids[i]) or ''
end
return out`;

/**
 * The Lua scripts of the Redis user index (merged into REDIS_SCRIPTS, so they load with the others).
 *
 * Layout: a user's index is two keys in one slot (the hash tag is the user's): a sorted set of session
 * ids scored by when each session expires (as last seen by this library), and a hash of session id ->
 * JSON record. A session's data stays in its own slot, `{<app>_<sessionKey>}_Data`: scripts on the
 * index never touch it and scripts on a session never touch the index, so nothing needs cross-slot
 * commands or SCAN.
 */
export const USER_SESSION_SCRIPTS = {
  /**
   * KEYS: index zset, index hash. ARGV: session id, expiry score, record JSON, deadline (Redis ms, as a commit's),
   * the key a moved session's entry must still record ('' : none), the record's own key. Then as userIndexRead; past
   * the deadline (the app answered 503) it adds nothing and returns -1. With ARGV[5], it adds nothing unless the
   * entry of this id records ARGV[5] or ARGV[6] (see UserSessionIndex.add).
   */
  userIndexAdd: {
    numberOfKeys: 2,
    lua: `
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[4]) then return -1 end
local listed = ARGV[5] == ''
if not listed then
  local record = redis.call('HGET', KEYS[2], ARGV[1])
  local ok, entry = false, nil
  if record then ok, entry = pcall(cjson.decode, record) end
  listed = ok and type(entry) == 'table' and (entry.sessionKey == ARGV[5] or entry.sessionKey == ARGV[6])
end
if listed then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
${READ_INDEX}`,
  },
  /** KEYS: index zset, index hash. Every entry: id, expiry score, record JSON ('' when missing). */
  userIndexRead: {
    numberOfKeys: 2,
    lua: READ_INDEX,
  },
  /**
   * KEYS: index zset, index hash. ARGV: n, n id/session-key pairs to drop, then id/score pairs to rescore
   * (only ids still present: a concurrent removal wins). An entry is dropped only while its record names
   * that session key ('' : whatever it names): the same id bound again meanwhile under a new key (a sign-in's
   * `regenerate()` keeps the id) is another entry, which a sign-out or a probe of the old key must not drop.
   * Both keys go when the index is empty.
   */
  userIndexUpdate: {
    numberOfKeys: 2,
    lua: `
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  local record = ARGV[i + 1] ~= '' and redis.call('HGET', KEYS[2], ARGV[i])
  local ok, entry = true, nil
  if record then ok, entry = pcall(cjson.decode, record) end
  if not record or not ok or type(entry) ~= 'table' or entry.sessionKey == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
for i = 2 * n + 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[i + 1], ARGV[i])
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1`,
  },
  /** KEYS: session data hash. Reply: its stored id (false: none) and its time to live (ms). */
  userSessionProbe: {
    numberOfKeys: 1,
    lua: `return {redis.call('HGET', KEYS[1], '\\0id'), redis.call('PTTL', KEYS[1])}`,
  },
  /**
   * KEYS: session data hash. ARGV: session id. Deletes the session only while the key holds that
   * session (a key reused by a new session after expiry is left alone). 1: deleted.
   */
  userSessionRevoke: {
    numberOfKeys: 1,
    lua: `
if redis.call('HGET', KEYS[1], '\\0id') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  },
} as const;
