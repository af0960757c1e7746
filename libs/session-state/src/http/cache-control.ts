/**
 * Directives that let a cache keep or share a response: dropped from a response that sets a cookie, which must
 * reach no one else (`no-store` already forbids storing; these would contradict it).
 */
const SHARING_DIRECTIVES = new Set([
  'public',
  'max-age',
  's-maxage',
  'immutable',
  'stale-while-revalidate',
  'stale-if-error',
]);

/**
 * The `Cache-Control` of a response that sets a session or TempData cookie: the app's directives (`private`,
 * `must-revalidate`, `no-transform`, which keeps a compression middleware off an event stream, ...) with
 * `no-cache, no-store` added and the ones that allow caching or sharing dropped.
 *
 * @example
 * uncachedCacheControl(undefined); // 'no-cache, no-store'
 * uncachedCacheControl('public, max-age=60, no-transform'); // 'no-transform, no-cache, no-store'
 */
export function uncachedCacheControl(current: number | string | readonly string[] | undefined): string {
  if (current === undefined) return 'no-cache, no-store';
  const kept: string[] = [];
  const seen = new Set<string>();
  const text = Array.isArray(current) ? current.join(',') : String(current);
  // Commas inside a quoted value (`private="Set-Cookie, Authorization"`) do not end a directive.
  for (const directive of text.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const trimmed = directive.trim();
    const name = trimmed.split('=', 1)[0].trim().toLowerCase();
    if (!name || SHARING_DIRECTIVES.has(name) || seen.has(name)) continue;
    seen.add(name);
    kept.push(trimmed);
  }
  for (const needed of ['no-cache', 'no-store']) if (!seen.has(needed)) kept.push(needed);
  return kept.join(', ');
}
