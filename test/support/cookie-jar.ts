/** Minimal cookie handling for HTTP-level tests. */
export function setCookies(res: { headers: Record<string, unknown> }): string[] {
  const header = res.headers['set-cookie'];
  return Array.isArray(header) ? (header as string[]) : typeof header === 'string' ? [header] : [];
}

/** The Set-Cookie header for `name`, if the response set one. */
export function findSetCookie(res: { headers: Record<string, unknown> }, name: string): string | undefined {
  return setCookies(res).find((c) => c.startsWith(`${name}=`));
}

/** `name=value` for a Cookie header from a response's Set-Cookie. */
export function cookiePair(res: { headers: Record<string, unknown> }, name: string): string {
  const found = findSetCookie(res, name);
  if (!found) throw new Error(`response set no ${name} cookie`);
  return found.split(';')[0];
}

/** The store key a session cookie carries: its value (`name=` optional) without the signature after the last dot. */
export function sessionKeyOf(cookie: string): string {
  const value = cookie.slice(cookie.indexOf('=') + 1);
  return value.slice(0, value.lastIndexOf('.'));
}

/** A jar that follows Set-Cookie across requests (expired cookies removed). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  update(res: { headers: Record<string, unknown> }): void {
    for (const header of setCookies(res)) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /expires=thu, 01 jan 1970/i.test(a.trim()));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }

  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}
