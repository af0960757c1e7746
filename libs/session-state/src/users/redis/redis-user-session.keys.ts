/**
 * The keys of a user's index: `{<applicationName>_user_<userId as base64url>}_Sessions` (sorted set)
 * and `..._SessionInfo` (hash). The braces are a hash tag: both keys of one user share a slot. The
 * user id is base64url-encoded so no user id can end the tag early or collide with session keys.
 *
 * @example
 * userIndexKeys('shop', 'alice'); // ['{shop_user_YWxpY2U}_Sessions', '{shop_user_YWxpY2U}_SessionInfo']
 */
export function userIndexKeys(applicationName: string, userId: string): [zset: string, hash: string] {
  const tag = `{${applicationName}_user_${Buffer.from(userId, 'utf8').toString('base64url')}}`;
  return [`${tag}_Sessions`, `${tag}_SessionInfo`];
}
