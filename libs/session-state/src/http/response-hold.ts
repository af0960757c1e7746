import type { HttpRequest, HttpResponse } from './http-exchange.js';

type ResponseMethod = (this: HttpResponse, ...args: unknown[]) => unknown;

/** Held bytes after which a `write` answers false, asking the writer to wait for `drain`. */
const HELD_WRITE_SOFT_LIMIT = 64 * 1024;
/** Bytes of held writes buffered at most; a commit is normally done long before. */
const HELD_WRITE_BUDGET = 1024 * 1024;

interface HeldCall {
  readonly method: ResponseMethod;
  readonly args: unknown[];
}

/** An error reply that replaces the response. */
export interface HoldErrorReply {
  readonly status: number;
  readonly message: string;
}

/** The reply when `beforeFirstByte` itself threw: the state was not saved. */
const UNSAVED: HoldErrorReply = { status: 503, message: 'Session state is temporarily unavailable.' };

/**
 * What the hold runs before the response's first byte: undefined when it is done at once, else a
 * promise of an error reply that replaces the response, or of undefined.
 */
export type BeforeFirstByte = () => Promise<HoldErrorReply | undefined> | undefined;

/**
 * Holds a response's first `write` or `end`, and every call after it, until `beforeFirstByte`
 * settled, then replays them in order: state is committed and its cookies are set while the headers
 * can still change. `beforeFirstByte` runs a microtask after that first call, so code that runs on in
 * the same turn (`res.redirect('/'); session.abandon()`) is still part of the commit.
 */
export class ResponseHold {
  /** Until the first `write` or `end`, which then waits for `beforeFirstByte`. */
  private armed = true;
  private held: HeldCall[] | undefined;
  private heldBytes = 0;
  /** The response went out before the commit finished (see {@link HELD_WRITE_BUDGET}). */
  private gaveUp = false;
  /** A held write answered false: a `drain` follows the release. */
  private askedToWait = false;

  constructor(
    private readonly res: HttpResponse,
    private readonly beforeFirstByte: BeforeFirstByte,
    /**
     * Whether a held write may answer false. Only when the writer's `drain` listeners are on the
     * response itself: middleware with its own `write` (compression) moves them elsewhere.
     */
    private readonly mayAskToWait: boolean,
    /** Called when a stream outgrew the budget and went out before the commit finished. */
    private readonly onEarlyRelease?: () => void,
  ) {}

  /** True when this call is held: the caller then returns {@link writeResult} for `write`, the response for `end`. */
  take(method: ResponseMethod, args: unknown[]): boolean {
    if (this.held) {
      this.hold({ method, args });
      return true;
    }
    if (!this.armed) return false;
    this.armed = false;
    this.held = [];
    this.hold({ method, args });
    queueMicrotask(() => this.settle());
    return true;
  }

  private settle(): void {
    let settling: ReturnType<BeforeFirstByte>;
    try {
      settling = this.beforeFirstByte();
    } catch {
      // Never leave the response hanging: it cannot go out as written, its state was not saved.
      settling = Promise.resolve(UNSAVED);
    }
    if (settling === undefined) {
      this.release(undefined);
      return;
    }
    settling.then(
      (error) => this.release(error),
      () => this.release(undefined),
    );
  }

  /** What a held `write` answers: false past the soft limit (when allowed), asking for a `drain`. */
  writeResult(): boolean {
    if (this.held === undefined || !this.mayAskToWait || this.heldBytes < HELD_WRITE_SOFT_LIMIT) return true;
    this.askedToWait = true;
    return false;
  }

  private hold(call: HeldCall): void {
    this.held!.push(call);
    const chunk = call.args[0];
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) this.heldBytes += chunk.length;
    // A writer that ignores back-pressure must not grow the buffer while a slow store answers:
    // past the budget the response goes out without waiting (its commit goes on).
    if (this.heldBytes > HELD_WRITE_BUDGET) {
      this.gaveUp = true;
      this.onEarlyRelease?.();
      this.replay();
    }
  }

  private release(error: HoldErrorReply | undefined): void {
    if (this.gaveUp) return;
    if (error && !this.res.headersSent) {
      this.held = undefined;
      replaceWithJsonError(this.res, error.status, { statusCode: error.status, message: error.message });
      return;
    }
    this.replay();
  }

  private replay(): void {
    const calls = this.held ?? [];
    this.held = undefined;
    for (const call of calls) call.method.apply(this.res, call.args);
    if (this.askedToWait) {
      this.askedToWait = false;
      this.res.emit('drain');
    }
  }
}

/** Marks a response prototype whose `write` and `end` ask the request's hold first. */
const HOOKED = Symbol.for('nest-session-state.response-hold');

/**
 * Makes every response inheriting `responsePrototype` (an Express app's `app.response`) ask
 * `holdOf(req)` before `write` and `end`. Once per application, instead of own `write`/`end` on each
 * response: own properties change the response object's shape, and every later property access on
 * it in Node and Express got slower. The inherited methods are looked up at call time, so
 * instrumentation that patches `ServerResponse.prototype` later still runs.
 */
export function installResponseHold(
  responsePrototype: object,
  holdOf: (req: HttpRequest | undefined) => ResponseHold | undefined,
): void {
  const proto = responsePrototype as Record<PropertyKey, unknown>;
  if (proto[HOOKED]) return;
  const parent = Object.getPrototypeOf(proto) as Record<'write' | 'end', ResponseMethod>;
  const write: ResponseMethod = function (...args) {
    return parent.write.apply(this, args);
  };
  const end: ResponseMethod = function (...args) {
    return parent.end.apply(this, args);
  };
  proto[HOOKED] = true;
  proto.write = function heldWrite(this: HttpResponse, ...args: unknown[]) {
    const hold = holdOf(this.req);
    if (hold?.take(write, args)) return hold.writeResult();
    return parent.write.apply(this, args);
  };
  proto.end = function heldEnd(this: HttpResponse, ...args: unknown[]) {
    if (holdOf(this.req)?.take(end, args)) return this;
    return parent.end.apply(this, args);
  };
}

/**
 * True when `res` goes through {@link installResponseHold}'s hook: it inherits it and has no own
 * `write`/`end` (middleware such as `compression` installs its own, which would run first and send
 * the headers before the hold could act).
 */
export function usesInstalledHold(res: HttpResponse): boolean {
  return (
    (res as unknown as Record<PropertyKey, unknown>)[HOOKED] === true &&
    !Object.hasOwn(res, 'end') &&
    !Object.hasOwn(res, 'write')
  );
}

/**
 * The hold for one response that does not inherit the installed hook: its current `write` and
 * `end` (its own, e.g. compression's, or inherited) are wrapped as own properties.
 */
export function attachResponseHold(res: HttpResponse, hold: ResponseHold): void {
  const write = res.write as unknown as ResponseMethod;
  const end = res.end as unknown as ResponseMethod;
  res.write = function heldWrite(this: HttpResponse, ...args: unknown[]) {
    return hold.take(write, args) ? hold.writeResult() : write.apply(this, args);
  } as HttpResponse['write'];
  res.end = function heldEnd(this: HttpResponse, ...args: unknown[]) {
    return hold.take(end, args) ? this : end.apply(this, args);
  } as HttpResponse['end'];
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
