/** Longest Cookie header parsed; beyond it the header is treated as absent (no unbounded work). */
export const MAX_COOKIE_HEADER_LENGTH = 64 * 1024;

/**
 * The value of the cookie `name` in a Cookie header: the first occurrence wins when a name repeats,
 * values are not URL-decoded (ours are base64url). Undefined when absent or the header is oversized.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > MAX_COOKIE_HEADER_LENGTH) return undefined;
  let from = 0;
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at === -1) return undefined;
    const eq = at + name.length;
    if (startsCookie(header, at) && header.charCodeAt(eq) === 0x3d /* = */) {
      let end = header.indexOf(';', eq + 1);
      if (end === -1) end = header.length;
      return header.slice(eq + 1, end).trim();
    }
    from = at + 1;
  }
  return undefined;
}

/** True when `index` starts a cookie: only spaces lie between it and the previous `;` or the start. */
function startsCookie(text: string, index: number): boolean {
  let i = index - 1;
  while (i >= 0 && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i--;
  return i < 0 || text.charCodeAt(i) === 0x3b;
}

/** Every cookie of a Cookie header by name (first occurrence wins); empty for an oversized header. */
export function readAllCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header || header.length > MAX_COOKIE_HEADER_LENGTH) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !(name in cookies)) cookies[name] = part.slice(eq + 1).trim();
  }
  return cookies;
}
