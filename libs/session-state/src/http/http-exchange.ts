import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The few request/response operations the library needs, over Node's objects (Express passes its
 * req/res, which extend them). Everything that touches a platform's req/res goes through here.
 */
export type HttpRequest = IncomingMessage & { secure?: boolean; protocol?: string };
export type HttpResponse = ServerResponse;

/** Whether the request arrived over HTTPS (Express's `req.secure` honours `trust proxy`). */
export function isSecureRequest(req: HttpRequest): boolean {
  if (typeof req.secure === 'boolean') return req.secure;
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** Adds a Set-Cookie header without dropping the ones already set. */
export function appendSetCookie(res: HttpResponse, cookie: string): void {
  const current = res.getHeader('set-cookie');
  if (current === undefined) res.setHeader('set-cookie', cookie);
  else if (Array.isArray(current)) res.setHeader('set-cookie', [...current, cookie]);
  else res.setHeader('set-cookie', [String(current), cookie]);
}

/** Sets the Set-Cookie header for cookie `name`, replacing one set earlier in this response. */
export function replaceSetCookie(res: HttpResponse, name: string, cookie: string): void {
  const current = res.getHeader('set-cookie');
  if (current === undefined) {
    res.setHeader('set-cookie', cookie);
    return;
  }
  const prefix = `${name}=`;
  const list = (Array.isArray(current) ? current : [String(current)]).filter((c) => !c.startsWith(prefix));
  res.setHeader('set-cookie', [...list, cookie]);
}

/** Marks the response as not cacheable by shared caches (it carries a new session cookie). */
export function preventCaching(res: HttpResponse): void {
  res.setHeader('cache-control', 'no-cache, no-store');
  res.setHeader('pragma', 'no-cache');
}
