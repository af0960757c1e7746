/** Longest Cookie header parsed; beyond it the header is treated as absent (no unbounded work). */
export const MAX_COOKIE_HEADER_LENGTH = 64 * 1024;

/**
 * The value of the cookie `name` in a Cookie header: the first occurrence wins when a name repeats,
 * values are not URL-decoded (ours are base64url). Undefined when absent or the header is oversized.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > MAX_COOKIE_HEADER_LENGTH) return undefined;
  const at = findCookie(header, name, 0);
  return at === -1 ? undefined : valueAt(header, at + name.length + 1);
}

/**
 * Every value of the cookie `name` in a Cookie header, in the header's order, at most `limit` of them; empty when
 * absent or the header is oversized. A browser sends one cookie per path and domain it holds under a name (the
 * longest path first), so a stale or planted one can come before the one the app set.
 */
export function readCookieValues(header: string | undefined, name: string, limit: number): string[] {
  const values: string[] = [];
  if (!header || header.length > MAX_COOKIE_HEADER_LENGTH) return values;
  for (let at = findCookie(header, name, 0); at !== -1 && values.length < limit;) {
    const from = at + name.length + 1;
    values.push(valueAt(header, from));
    at = findCookie(header, name, from);
  }
  return values;
}

/** Where the cookie `name=` starts in `header` at or after `from`, or -1. */
function findCookie(header: string, name: string, from: number): number {
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at === -1) return -1;
    if (startsCookie(header, at) && header.charCodeAt(at + name.length) === 0x3d /* = */) return at;
    from = at + 1;
  }
  return -1;
}

/** The cookie value that starts at `from` (after its `=`), up to the next `;`, without surrounding spaces. */
function valueAt(header: string, from: number): string {
  let end = header.indexOf(';', from);
  if (end === -1) end = header.length;
  return unquote(trimSpaces(header.slice(from, end)));
}

/**
 * RFC 6265 allows a cookie value in double quotes (`name="value"`), and some clients and proxies re-send ours
 * that way; the quotes are not part of what we wrote, so one surrounding pair is removed.
 */
function unquote(value: string): string {
  return value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22
    ? value.slice(1, -1)
    : value;
}

/** True when `index` starts a cookie: only spaces lie between it and the previous `;` or the start. */
function startsCookie(text: string, index: number): boolean {
  let i = index - 1;
  while (i >= 0 && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i--;
  return i < 0 || text.charCodeAt(i) === 0x3b;
}

/**
 * Every cookie of a Cookie header by name (the first occurrence wins, or with `lastWins` the last); empty for an
 * oversized header.
 */
export function readAllCookies(header: string | undefined, lastWins = false): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header || header.length > MAX_COOKIE_HEADER_LENGTH) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = trimSpaces(part.slice(0, eq));
    if (name && (lastWins || !(name in cookies))) cookies[name] = unquote(trimSpaces(part.slice(eq + 1)));
  }
  return cookies;
}

/**
 * Strips the spaces and tabs HTTP allows around a cookie (RFC 6265's OWS), and nothing else:
 * `String.prototype.trim` would also strip U+00A0, which a Cookie header decoded as Latin-1 carries
 * for the byte 0xA0, so a valid value with that byte around it would be accepted.
 */
function trimSpaces(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
