/** Attributes of a Set-Cookie header. */
export interface CookieAttributes {
  path?: string;
  domain?: string;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: 'lax' | 'strict' | 'none';
  /** Seconds; omitted for a browser-session cookie. */
  maxAge?: number;
  expires?: Date;
}

const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const;

/** The attribute part of a Set-Cookie header, starting with `; ` (empty when none). */
export function formatCookieAttributes(attributes: CookieAttributes): string {
  let out = '';
  if (attributes.path) out += `; Path=${attributes.path}`;
  if (attributes.domain) out += `; Domain=${attributes.domain}`;
  if (attributes.maxAge !== undefined) out += `; Max-Age=${Math.floor(attributes.maxAge)}`;
  if (attributes.expires) out += `; Expires=${attributes.expires.toUTCString()}`;
  if (attributes.httpOnly) out += '; HttpOnly';
  if (attributes.secure) out += '; Secure';
  if (attributes.sameSite) out += `; SameSite=${SAME_SITE[attributes.sameSite]}`;
  return out;
}

/** A Set-Cookie header value; `value` must already be cookie-safe (base64url). */
export function formatSetCookie(name: string, value: string, attributes: CookieAttributes): string {
  return `${name}=${value}${formatCookieAttributes(attributes)}`;
}

/** A Set-Cookie header that deletes the cookie. */
export function formatDeleteCookie(name: string, attributes: CookieAttributes): string {
  return formatSetCookie(name, '', { ...attributes, maxAge: undefined, expires: new Date(0) });
}
