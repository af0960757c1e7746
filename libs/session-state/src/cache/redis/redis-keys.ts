/**
 * The Redis key layout, in one place.
 *
 * - Session data: `{<applicationName>_<sessionKey>}_Data`, a hash of the session's values.
 * - Session lock: `{<applicationName>_<sessionKey>}_Lock`, a string holding the owner's token.
 * - Ended mark: `{<applicationName>_<sessionKey>}_Ended`, `m` (the session moved: `regenerate()`) or `a`
 *   (`abandon()`), for the idle timeout: late commits of requests that loaded the session apply nothing.
 *   The braces are a cluster hash tag: every key of one session lands in one slot.
 * - Cache entries: `<applicationName>_<key>`, a hash with fields `d` (data), `s`, `a` (expiration).
 *
 * @example
 * redisKeys.sessionData('shop', sessionKey); // '{shop_<sessionKey>}_Data'
 * redisKeys.cacheEntry('shop', 'report');    // 'shop_report'
 */
export const redisKeys = {
  sessionData: (applicationName: string, sessionKey: string): string =>
    `{${applicationName}_${sessionKey}}_Data`,
  sessionLock: (applicationName: string, sessionKey: string): string =>
    `{${applicationName}_${sessionKey}}_Lock`,
  sessionEnded: (applicationName: string, sessionKey: string): string =>
    `{${applicationName}_${sessionKey}}_Ended`,
  cacheEntry: (applicationName: string, key: string): string => `${applicationName}_${key}`,
};
