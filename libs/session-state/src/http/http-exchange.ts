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

type EndFunction = HttpResponse['end'];
type EndArguments = unknown[];

/** Something that may hold a response's `end` until its state is committed. */
export interface ResponseEndHold {
  /**
   * Called instead of `end` while the hold is armed: returns true when it took over (it calls
   * `send(args)` itself later), false to let `end` go out now.
   */
  interceptEnd(args: EndArguments, send: (args: EndArguments) => void): boolean;
}

/** Marks a response prototype whose `end` asks the request's hold first (see {@link installEndHold}). */
const END_HOLD_INSTALLED = Symbol.for('nest-session-state.end-hold');

/**
 * Makes every response with this prototype (an Express app's `app.response`) ask
 * `holdOf(req)` before `end` goes out. Done once per application, instead of replacing `res.end` on
 * each response: an own `end` property changes the response object's shape, and every later
 * property access on it in Node and Express got slower.
 */
export function installEndHold(
  responsePrototype: object,
  holdOf: (req: HttpRequest | undefined) => ResponseEndHold | undefined,
): void {
  const proto = responsePrototype as Record<PropertyKey, unknown> & { end: EndFunction };
  if (proto[END_HOLD_INSTALLED]) return;
  const originalEnd = proto.end as (...a: EndArguments) => HttpResponse;
  proto[END_HOLD_INSTALLED] = true;
  proto.end = function end(this: HttpResponse, ...args: EndArguments) {
    const hold = holdOf(this.req as HttpRequest | undefined);
    if (hold?.interceptEnd(args, (held) => originalEnd.apply(this, held))) return this;
    return originalEnd.apply(this, args);
  } as EndFunction;
}

/** True when `res` inherits an `end` installed by {@link installEndHold}. */
export function hasEndHold(res: HttpResponse): boolean {
  return (res as unknown as Record<PropertyKey, unknown>)[END_HOLD_INSTALLED] === true;
}

/**
 * Runs `beforeEnd` (async) before the response's `end` goes out, so state is committed and its
 * cookies set while headers can still change. `beforeEnd` may replace the response (e.g. a 503);
 * it returns false to tell that it wrote the response itself. For responses without an installed
 * hold (platforms other than Express, or a response whose prototype was swapped).
 */
export function holdResponseEnd(res: HttpResponse, beforeEnd: () => Promise<boolean>): void {
  const originalEnd: EndFunction = res.end;
  let held = false;
  res.end = function heldEnd(this: HttpResponse, ...args: unknown[]) {
    if (held) return (originalEnd as (...a: unknown[]) => HttpResponse).apply(this, args);
    held = true;
    res.end = originalEnd;
    beforeEnd().then(
      (proceed) => {
        if (proceed) (originalEnd as (...a: unknown[]) => HttpResponse).apply(res, args);
      },
      () => (originalEnd as (...a: unknown[]) => HttpResponse).apply(res, args),
    );
    return res;
  } as EndFunction;
}

/** Replaces a not-yet-sent response body with a JSON error. */
export function replaceWithJsonError(res: HttpResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.removeHeader('content-length');
  res.removeHeader('etag');
  res.removeHeader('location');
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
