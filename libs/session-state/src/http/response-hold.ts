import { OutgoingMessage, STATUS_CODES } from 'node:http';
import type { RawRequest as HttpRequest, RawResponse as HttpResponse } from './platform-request.js';

type ResponseMethod = (this: HttpResponse, ...args: unknown[]) => unknown;

/** Held bytes after which a `write` answers false, asking the writer to wait for `drain`. */
const HELD_WRITE_SOFT_LIMIT = 64 * 1024;
/** Bytes of held writes buffered at most; a commit is normally done long before. */
const HELD_WRITE_BUDGET = 1024 * 1024;
/** Why an HTTP/2 stream is reset when its commit failed after its head left (see finishTail). */
const CUT_OFF = 'The session commit failed after the response had started: the response is cut off.';

interface HeldCall {
  readonly method: ResponseMethod;
  readonly args: unknown[];
}

/** An error reply that replaces the response: its status and JSON body. */
export interface HoldErrorReply {
  readonly status: number;
  readonly body: object;
}

/** The reply when `beforeFirstByte` itself threw: the state was not saved. */
const UNSAVED: HoldErrorReply = {
  status: 503,
  body: { statusCode: 503, message: 'Session state is temporarily unavailable.' },
};

/**
 * What the hold runs before the response's first byte: undefined when it is done at once, else a
 * promise of an error reply that replaces the response, or of undefined.
 */
export type BeforeFirstByte = () => Promise<HoldErrorReply | undefined> | undefined;

/**
 * Holds a response's first `write`, `end`, `writeHead` or `flushHeaders`, and every call after it,
 * until `beforeFirstByte` settled, then replays them in order: state is committed and its cookies
 * are set while the headers can still change. `beforeFirstByte` runs a microtask after that first
 * call, so code that runs on in the same turn (`res.redirect('/'); session.abandon()`) is still part
 * of the commit.
 */
export class ResponseHold {
  /** Until the first `write` or `end`, which then waits for `beforeFirstByte`. */
  private armed = true;
  private held: HeldCall[] | undefined;
  private heldBytes = 0;
  /** The response went out before the commit finished (see {@link HELD_WRITE_BUDGET}). */
  private gaveUp = false;
  /** `beforeFirstByte` settled. */
  private settled = false;
  /**
   * After the response went out before the commit finished: its latest `write` (and its `end`), held until the
   * commit settles, so a failed commit can still cut the response off before its end (see {@link finishTail}).
   */
  private tail: HeldCall[] = [];
  /** A held write answered false: a `drain` follows the release. */
  private askedToWait = false;
  /** A held call fixes the head when replayed (`writeHead`, `flushHeaders`, the first `write` or `end`). */
  private headFixed = false;
  /** The response's `end` is held: the app has ended it (see {@link holdsEnd}). */
  private endHeld = false;
  /** `drain` listeners added while calls were held, where middleware may route them off the response. */
  private drainListeners: ((...args: unknown[]) => void)[] | undefined;
  /** The response's `write` and `end` once the hold was in place (see {@link wrappedAbove}). */
  private outermost: readonly unknown[] | undefined;
  /**
   * An error reply answered the response: what the app (or a wrapper above the hold) writes once it ended is dropped,
   * its callbacks called, instead of reaching an ended response (where Node drops the callbacks of a closed
   * connection: an app awaiting them would wait for ever). Not before it ended: middleware below the hold
   * (compression's stream) may still be writing the reply through it.
   */
  private answered = false;
  /** Callbacks of dropped calls waiting for the response to be done (see {@link callWhenDone}). */
  private droppedCallbacks: (() => void)[] | undefined;
  /** The status and reason when the first held call fixed the head: later changes would not reach Node's head. */
  private headStatus: { code: number; message: string | undefined } | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly beforeFirstByte: BeforeFirstByte,
    /** Called when a stream outgrew the budget and went out before the commit finished. */
    private readonly onEarlyRelease?: () => void,
  ) {}

  /**
   * True when this call is held: the caller then returns {@link writeResult} for `write`, the response for `end`.
   * `last` marks the response's `end`: nothing follows it, so it is held whatever its size.
   */
  take(method: ResponseMethod, args: unknown[], last = false): boolean {
    if (this.answered && this.answerDone()) {
      this.callWhenDone(callbacksOf([{ method, args }]));
      return true;
    }
    if (this.gaveUp && !this.settled) {
      this.holdTail({ method, args }, last);
      return true;
    }
    if (!this.held) {
      if (!this.armed) return false;
      this.start();
    }
    if (last) this.endHeld = true;
    this.hold({ method, args }, last);
    return true;
  }

  /**
   * Holds `call`, a `write` or the `end`, as the response's latest: a `write` sends the one held before it, the `end`
   * keeps it (its last bytes: a body with a Content-Length is not complete without them). At most one write waits,
   * whatever the writer sends while the commit runs on. A call after the held `end` is dropped, as replay drops it.
   */
  private holdTail(call: HeldCall, last: boolean): void {
    if (this.endHeld) {
      this.callWhenDone(callbacksOf([call]));
      return;
    }
    if (last) {
      this.endHeld = true;
      this.tail.push(call);
      return;
    }
    const previous = this.tail;
    this.tail = [call];
    for (const held of previous) held.method.apply(this.res, held.args);
  }

  /**
   * The commit of a response that went out before it finished settled: its held last call goes out, or, when the
   * commit failed, the response is cut off (its connection closed before the end): its status left already, and a
   * complete response would tell the client its write was saved. The client sees a response that did not complete
   * (a chunked body without its last chunk, a body shorter than its Content-Length).
   */
  private finishTail(error: HoldErrorReply | undefined): void {
    const tail = this.tail;
    this.tail = [];
    this.endHeld = false;
    if (error) {
      this.callWhenDone(callbacksOf(tail));
      this.answered = true;
      // HTTP/2 (the compatibility response has a stream): destroyed without an error, the stream closes with
      // NO_ERROR after an END_STREAM, which a client reads as a complete response; with one it is reset
      // (INTERNAL_ERROR). HTTP/1.1 needs none: its connection closes before the end.
      if ((this.res as { stream?: unknown }).stream !== undefined) this.res.destroy(new Error(CUT_OFF));
      else this.res.destroy();
      return;
    }
    for (const held of tail) if (!this.res.writableEnded) held.method.apply(this.res, held.args);
  }

  /**
   * The error reply that answered the response ended it, or a failed commit cut it off ({@link finishTail}: Node's
   * `end` of a destroyed response would wait for a `finish` that never comes, and never call its callback).
   */
  private answerDone(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /**
   * True while the response's `end` is held: ended for the app, not yet for Node. A platform that decides
   * whether a route answered by `writableEnded` (Fastify's `reply.sent`) reads this as ended.
   */
  get holdsEnd(): boolean {
    return this.endHeld;
  }

  /** True while a call that writes the head (`writeHead`, `flushHeaders`, a `write` or `end`) is held. */
  get holdsHead(): boolean {
    return this.headFixed && this.held !== undefined;
  }

  /**
   * Holds `writeHead(status[, reason][, headers])`: its status and headers are applied to the
   * response now (as Node's `writeHead` does when `setHeader` was used before it), so the commit sees
   * them and adds its cookies next to them; the head itself is written when the hold releases. False
   * when the call is not held (it then goes to Node as it is, which also reports bad arguments).
   * @throws like Node (ERR_HTTP_HEADERS_SENT) when a held call has already fixed the head.
   */
  takeHead(method: ResponseMethod, args: unknown[]): boolean {
    if (this.answered && this.answerDone()) return true;
    if (!this.held && !this.armed) return false;
    if (headWritten(this.res)) return false;
    if (this.headFixed) throw headersSentError();
    const head = applyHead(this.res, args);
    if (head === undefined) return false;
    if (!this.held) this.start();
    this.hold({ method, args: head }, false);
    return true;
  }

  /** Records the response's methods as they are with the hold in place (called once the platform placed it). */
  placed(): this {
    this.outermost = [this.res.write, this.res.end];
    return this;
  }

  /**
   * True when middleware wrapped the response's methods after the hold was placed (compression applied in a route,
   * or by a middleware that runs after the session's first use): it sits above the hold, has already handed its
   * own output to the hold, and ignores a second `end`, so an error reply must go out below it.
   */
  private wrappedAbove(): boolean {
    const outermost = this.outermost;
    if (outermost === undefined) return false;
    // Not `writeHead`: a wrapper of it alone (on-headers: response-time, morgan) passes every call on, and its
    // listeners must still see the error reply's head.
    return this.res.write !== outermost[0] || this.res.end !== outermost[1];
  }

  /**
   * Calls `callbacks` once the response is done (finished or closed): the calls they came with were dropped for an
   * error reply or a second answer, and an app awaiting them (`await new Promise((r) => res.end(body, r))`) would wait
   * for ever. One listener pair per response, however many calls were dropped.
   */
  private callWhenDone(callbacks: readonly (() => void)[]): void {
    if (callbacks.length === 0) return;
    const res = this.res;
    if (res.writableFinished || res.destroyed) {
      setImmediate(() => callbacks.forEach((callback) => callback()));
      return;
    }
    if (this.droppedCallbacks !== undefined) {
      this.droppedCallbacks.push(...callbacks);
      return;
    }
    const pending = (this.droppedCallbacks = [...callbacks]);
    const call = () => {
      if (this.droppedCallbacks !== pending) return;
      this.droppedCallbacks = undefined;
      for (const callback of pending) callback();
    };
    res.once('finish', call);
    res.once('close', call);
  }

  private start(): void {
    this.armed = false;
    this.held = [];
    // A promise's reaction, not queueMicrotask: the same microtask, which Jest's fake timers (by default) do not
    // replace, so an app's tests under them do not hang on every request that uses the session.
    void Promise.resolve().then(() => this.settle());
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

  /**
   * A `drain` listener added to the response while calls are held. Middleware with its own `write`
   * (compression) routes `res.on('drain')` to its own stream, which never drains for a write the hold
   * kept: the release calls the listener itself.
   */
  noteDrainListener(listener: unknown): void {
    if (this.held !== undefined && typeof listener === 'function')
      (this.drainListeners ??= []).push(listener as (...args: unknown[]) => void);
  }

  /** What a held `write` answers: false past the soft limit, asking for a `drain`. */
  writeResult(): boolean {
    if (this.held === undefined || this.heldBytes < HELD_WRITE_SOFT_LIMIT) return true;
    this.askedToWait = true;
    return false;
  }

  private hold(call: HeldCall, last: boolean): void {
    // A writer that ignores back-pressure must not grow the buffer while a slow store answers: a
    // write that comes once the budget is used up sends the response without waiting (its commit
    // goes on). Only a further write: a body written in one call (a returned value, `res.send`, one
    // large `write`) is in memory already, and its last call, `end`, is always held, so a large
    // response still carries its commit's cookies.
    const overBudget = !last && this.heldBytes >= HELD_WRITE_BUDGET;
    this.held!.push(call);
    if (!this.headFixed) this.headStatus = { code: this.res.statusCode, message: statusMessageOf(this.res) };
    this.headFixed = true;
    const chunk = call.args[0];
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) this.heldBytes += chunk.length;
    if (overBudget) {
      this.gaveUp = true;
      this.onEarlyRelease?.();
      this.replay();
    }
  }

  private release(error: HoldErrorReply | undefined): void {
    this.settled = true;
    if (this.gaveUp) {
      this.finishTail(error);
      return;
    }
    if (error && !headWritten(this.res)) {
      // The route has not ended its response: it is still writing (a stream, an @Sse() producer), and what it writes
      // now is dropped. It learns that nobody reads it only when the connection closes (Nest stops an event stream's
      // producer then), so the error reply closes it, as if the client had left.
      const stillWriting = !this.endHeld;
      this.callWhenDone(callbacksOf(this.held));
      this.held = undefined;
      this.endHeld = false;
      const below = this.wrappedAbove();
      replaceWithJsonError(this.res, error.status, error.body, below, stillWriting);
      this.answered = true;
      return;
    }
    this.replay();
  }

  private replay(): void {
    const calls = this.held ?? [];
    this.held = undefined;
    this.endHeld = false; // from here Node's own state answers
    // Without the hold the head left with the first of these calls: a status set since (an exception filter's, after
    // the route wrote) would not have reached it.
    const head = this.headStatus;
    if (head !== undefined && !headWritten(this.res)) {
      this.res.statusCode = head.code;
      if (head.message !== undefined) this.res.statusMessage = head.message;
    }
    for (const [i, call] of calls.entries()) {
      // A second answer after the first ended (a route that sent, then returned a value): Node would report a write
      // after end as an 'error' on the response, which kills a process without a listener. It is dropped.
      if (this.res.writableEnded) {
        this.callWhenDone(callbacksOf(calls.slice(i)));
        break;
      }
      call.method.apply(this.res, call.args);
    }
    const noted = this.drainListeners;
    this.drainListeners = undefined;
    if (this.askedToWait) {
      this.askedToWait = false;
      // Listeners middleware kept elsewhere are called here; the ones on the response (read before the
      // emit, which drops `once` ones) by the emit.
      const onResponse = this.res.listeners('drain');
      const elsewhere = noted?.filter((listener) => !onResponse.includes(listener));
      this.res.emit('drain');
      for (const listener of elsewhere ?? []) listener.call(this.res);
    }
  }
}

/** The response's status text; undefined on HTTP/2, which has none (its compatibility response warns when read). */
function statusMessageOf(res: HttpResponse): string | undefined {
  return res instanceof OutgoingMessage ? res.statusMessage : undefined;
}

/** The callbacks the app passed to held calls (`write(chunk, cb)`, `end(cb)`): Node's contract is to call them. */
function callbacksOf(calls: readonly HeldCall[] | undefined): (() => void)[] {
  const callbacks: (() => void)[] = [];
  for (const call of calls ?? []) {
    const last = call.args[call.args.length - 1];
    if (typeof last === 'function') callbacks.push(last as () => void);
  }
  return callbacks;
}

/** Marks a response prototype whose `write`, `end`, `writeHead` and `flushHeaders` ask the hold first. */
const HOOKED = Symbol.for('nest-session-state.response-hold');

type HeldMethod = 'write' | 'end' | 'writeHead' | 'flushHeaders';

/**
 * Makes every response inheriting `responsePrototype` (an Express app's `app.response`) ask
 * `holdOf(req)` before `write`, `end`, `writeHead` and `flushHeaders`. Once per application,
 * instead of own methods on each response: own properties change the response object's shape, and
 * every later property access on it in Node and Express got slower. The inherited methods are
 * looked up at call time, so instrumentation that patches `ServerResponse.prototype` later still runs.
 */
export function installResponseHold(
  responsePrototype: object,
  holdOf: (req: HttpRequest | undefined) => ResponseHold | undefined,
  { reportHeld = false }: HeldStateReport = {},
): void {
  const proto = responsePrototype as Record<PropertyKey, unknown>;
  if (proto[HOOKED]) return;
  const parent = Object.getPrototypeOf(proto) as Record<HeldMethod, ResponseMethod>;
  if (reportHeld) reportHeldState(proto, (res) => holdOf(res.req));
  const inherited = (name: HeldMethod): ResponseMethod =>
    function (this: HttpResponse, ...args: unknown[]) {
      return parent[name].apply(this, args);
    };
  const write = inherited('write');
  const end = inherited('end');
  const writeHead = inherited('writeHead');
  const flushHeaders = inherited('flushHeaders');
  proto.write = function heldWrite(this: HttpResponse, ...args: unknown[]) {
    const hold = holdOf(this.req);
    if (hold?.take(write, args)) return hold.writeResult();
    return parent.write.apply(this, args);
  };
  proto.end = function heldEnd(this: HttpResponse, ...args: unknown[]) {
    if (holdOf(this.req)?.take(end, args, true)) return this;
    return parent.end.apply(this, args);
  };
  proto.writeHead = function heldWriteHead(this: HttpResponse, ...args: unknown[]) {
    if (holdOf(this.req)?.takeHead(writeHead, args)) return this;
    return parent.writeHead.apply(this, args);
  };
  proto.flushHeaders = function heldFlushHeaders(this: HttpResponse, ...args: unknown[]) {
    if (holdOf(this.req)?.take(flushHeaders, args)) return;
    return parent.flushHeaders.apply(this, args);
  };
  const parentMethods = parent as unknown as Record<HeaderMethod, ResponseMethod>;
  for (const name of HEADER_METHODS)
    proto[name] = headerGuard(
      name,
      () => parentMethods[name],
      (res) => holdOf(res.req),
    );
  proto[HOOKED] = {
    write: proto.write,
    end: proto.end,
    writeHead: proto.writeHead,
    flushHeaders: proto.flushHeaders,
  } satisfies InstalledHold;
}

/**
 * Whether a held response reports what the app did to it, as Node would once the call returned:
 * `headersSent` once a call that writes the head is held ({@link ResponseHold.holdsHead}), `writableEnded`
 * once its `end` is ({@link ResponseHold.holdsEnd}). Fastify answers a route itself (`reply.send()` once the
 * handler's promise settles) unless `reply.raw` shows the route wrote the head or ended the response; Nest's
 * exception filter and reply path ask the same on both platforms; without the report their second answer would
 * meet a head already held. The library itself reads Node's own state ({@link headWritten}). (`on-finished` reads
 * `writableEnded` too: a listener attached after a held `end` runs at once, before the response is sent.)
 */
interface HeldStateReport {
  readonly reportHeld?: boolean;
}

/**
 * Defines `writableEnded` and `headersSent` on `target` (a response prototype, or one response) as the
 * held state of the response's hold, or else Node's (see {@link HeldStateReport}).
 */
function reportHeldState(target: object, holdFor: (res: HttpResponse) => ResponseHold | undefined): void {
  const ended = inheritedGetter(target, 'writableEnded');
  const headersSent = inheritedGetter(target, 'headersSent');
  Object.defineProperties(target, {
    writableEnded: {
      configurable: true,
      get(this: HttpResponse): boolean {
        return holdFor(this)?.holdsEnd === true || ended.call(this);
      },
    },
    headersSent: {
      configurable: true,
      get(this: HttpResponse): boolean {
        return holdFor(this)?.holdsHead === true || headersSent.call(this);
      },
    },
  });
}

/** Node's getter `name` of a response, found along `from`'s prototype chain. */
function inheritedGetter(
  from: object,
  name: 'writableEnded' | 'headersSent',
): (this: HttpResponse) => boolean {
  for (let proto: object | null = from; proto; proto = Object.getPrototypeOf(proto) as object | null) {
    const getter = Object.getOwnPropertyDescriptor(proto, name)?.get;
    if (getter) return getter as (this: HttpResponse) => boolean;
  }
  throw new TypeError(`The response has no ${name} getter: not a Node HTTP response.`);
}

const nodeHeadersSent = inheritedGetter(OutgoingMessage.prototype, 'headersSent');

/**
 * Whether the response's head was really written (Node's own `headersSent`), whatever a held response
 * reports to the app and the platform ({@link HeldStateReport}).
 */
export function headWritten(res: HttpResponse): boolean {
  if (res instanceof OutgoingMessage) return nodeHeadersSent.call(res);
  // An HTTP/2 compatibility response: its own class's getter, under any a held response was given.
  return inheritedGetter(Object.getPrototypeOf(res) as object, 'headersSent').call(res);
}

/** The methods {@link installResponseHold} put on a prototype (under {@link HOOKED}). */
type InstalledHold = Record<HeldMethod, unknown>;

/**
 * True when `res` goes through {@link installResponseHold}'s hook: its `write`, `end`, `writeHead`
 * and `flushHeaders` are the installed ones (middleware such as `compression` installs its own, which
 * would run first and send the headers before the hold could act). Compared by identity: four
 * inherited loads cost less than four own-property checks, on every request.
 */
export function usesInstalledHold(res: HttpResponse): boolean {
  const response = res as unknown as Record<PropertyKey, unknown>;
  const installed = response[HOOKED] as InstalledHold | undefined;
  return (
    typeof installed === 'object' &&
    installed !== null &&
    response.end === installed.end &&
    response.write === installed.write &&
    response.writeHead === installed.writeHead &&
    response.flushHeaders === installed.flushHeaders
  );
}

/**
 * The hold for one response that does not inherit the installed hook: its current `write`, `end`,
 * `writeHead` and `flushHeaders` (its own, e.g. compression's, or inherited) are wrapped as own properties.
 */
export function attachResponseHold(
  res: HttpResponse,
  hold: ResponseHold,
  { reportHeld = false }: HeldStateReport = {},
): void {
  if (reportHeld) reportHeldState(res, () => hold);
  const target = res as unknown as Record<HeldMethod, ResponseMethod>;
  // Writers wait for `drain` through these (`once` too: it calls `on` with its wrapper, which is the one
  // to call, as it runs the listener only once); middleware that replaced them may send it elsewhere.
  const events = res as unknown as Record<'on' | 'addListener', ResponseMethod>;
  for (const name of ['on', 'addListener'] as const) {
    const add = events[name];
    events[name] = function (this: HttpResponse, type: unknown, listener: unknown, ...rest: unknown[]) {
      if (type === 'drain') hold.noteDrainListener(listener);
      return add.call(this, type, listener, ...rest);
    };
  }
  const write = target.write;
  const end = target.end;
  const writeHead = target.writeHead;
  const flushHeaders = target.flushHeaders;
  target.write = function heldWrite(this: HttpResponse, ...args: unknown[]) {
    return hold.take(write, args) ? hold.writeResult() : write.apply(this, args);
  };
  target.end = function heldEnd(this: HttpResponse, ...args: unknown[]) {
    return hold.take(end, args, true) ? this : end.apply(this, args);
  };
  target.writeHead = function heldWriteHead(this: HttpResponse, ...args: unknown[]) {
    return hold.takeHead(writeHead, args) ? this : writeHead.apply(this, args);
  };
  target.flushHeaders = function heldFlushHeaders(this: HttpResponse, ...args: unknown[]) {
    if (!hold.take(flushHeaders, args)) return flushHeaders.apply(this, args);
  };
  // A response whose prototype has the installed hold (Express's app.response) is guarded there already.
  if (inheritsInstalledHold(res)) return;
  const headers = res as unknown as Record<HeaderMethod, ResponseMethod>;
  for (const name of HEADER_METHODS) {
    const below = headers[name];
    headers[name] = headerGuard(
      name,
      () => below,
      () => hold,
    );
  }
}

/**
 * Applies `writeHead`'s status, reason and headers to a response whose head is not written yet, the
 * way Node's `writeHead` merges them with headers set before (headers given as an array replace
 * earlier ones of the same name and may repeat), except Set-Cookie: its values are added to the
 * cookies already set, never replace them. Fastify passes every header of the reply to `writeHead`,
 * and a session commit earlier in the request (the interceptor's) has set its cookie on the
 * response by then. Returns the arguments that write the head afterwards, or undefined when the
 * arguments are not valid (Node then reports them).
 */
function applyHead(res: HttpResponse, args: unknown[]): unknown[] | undefined {
  const [statusCode, second, third] = args;
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999)
    return undefined;
  const reason = typeof second === 'string' ? second : undefined;
  const headers = reason === undefined ? second : third;
  if (Array.isArray(headers)) {
    if (headers.length % 2 !== 0) return undefined;
    for (let i = 0; i < headers.length; i += 2)
      if (headers[i] && !isSetCookie(headers[i])) res.removeHeader(String(headers[i]));
    for (let i = 0; i < headers.length; i += 2)
      if (headers[i]) res.appendHeader(String(headers[i]), headers[i + 1] as string | string[]);
  } else if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object') return undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (!name || value === undefined) continue;
      if (isSetCookie(name)) res.appendHeader(name, value as string | string[]);
      else res.setHeader(name, value as string | number | string[]);
    }
  }
  res.statusCode = statusCode;
  if (reason !== undefined) res.statusMessage = reason;
  return reason === undefined ? [statusCode] : [statusCode, reason];
}

function isSetCookie(name: unknown): boolean {
  return typeof name === 'string' && name.length === 10 && name.toLowerCase() === 'set-cookie';
}

/** What Node throws for a second head (ERR_HTTP_HEADERS_SENT). */
function headersSentError(verb: 'write' | 'set' | 'remove' = 'write'): Error {
  return Object.assign(new Error(`Cannot ${verb} headers after they are sent to the client`), {
    code: 'ERR_HTTP_HEADERS_SENT',
  });
}

/** The header methods the hold guards: once a held call fixed the head, the app's changes fail as Node's would. */
const HEADER_METHODS = ['setHeader', 'appendHeader', 'removeHeader'] as const;
type HeaderMethod = (typeof HEADER_METHODS)[number];

/** A guard for `name` over `below`: refuses while `holdOf(res)` holds a head (see {@link ResponseHold.holdsHead}). */
function headerGuard(
  name: HeaderMethod,
  below: (res: HttpResponse) => ResponseMethod,
  holdOf: (res: HttpResponse) => ResponseHold | undefined,
): ResponseMethod {
  const verb = name === 'removeHeader' ? 'remove' : 'set';
  // Two fixed parameters, not a rest array: these run for every header of every response.
  return function guardedHeader(this: HttpResponse, header: unknown, value: unknown) {
    // Without the hold the head left with that call, and Node refuses; a change let through would describe a body
    // that is not the one sent (a second answer's Content-Length: the response would hang).
    if (holdOf(this)?.holdsHead === true) throw headersSentError(verb);
    return below(this).call(this, header, value);
  };
}

/**
 * Sets (or, `value` undefined, removes) a header the library itself writes while the head is held (its cookies, the
 * commit's cache headers): the response class's own method, past the guard that refuses the app's changes.
 */
export function setLibraryHeader(
  res: HttpResponse,
  name: string,
  value: string | string[] | undefined,
): void {
  if (value === undefined) nativeMethod(res, 'removeHeader').call(res, name);
  else nativeMethod(res, 'setHeader').call(res, name, value);
}

/**
 * Headers that describe the body they came with, its framing or how long it may be reused: a held head's, replaced
 * by a JSON error, must not describe the error (a gzip label on plain JSON, `Transfer-Encoding` beside
 * `Content-Length`, a download's file name, an hour in a shared cache). The app's other headers (CORS, security,
 * `Vary`, its cookies) stay.
 */
const BODY_HEADERS = [
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
  'content-disposition',
  'content-language',
  'content-location',
  'content-md5',
  'content-digest',
  'repr-digest',
  'digest',
  'transfer-encoding',
  'trailer',
  'etag',
  'last-modified',
  'location',
  'accept-ranges',
  'cache-control',
  'expires',
  'age',
  // A proxy or CDN acts on these whatever the status: it would serve the route's file, or cache the error.
  'x-accel-redirect',
  'x-sendfile',
  'x-litespeed-location',
  'x-accel-expires',
  'surrogate-control',
  'cdn-cache-control',
  'cloudflare-cdn-cache-control',
];

/**
 * Replaces a not-yet-sent response body with a JSON error. `below`: written with the response class's own
 * `writeHead` and `end`, past any middleware that wrapped them (it would encode the reply, or drop it).
 * `closeConnection`: an HTTP/1 connection closes once the reply is sent (its `Connection: keep-alive` too).
 */
export function replaceWithJsonError(
  res: HttpResponse,
  status: number,
  body: object,
  below = false,
  closeConnection = false,
): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  // HTTP/2 has no status text (its compatibility response warns when one is set).
  if (res instanceof OutgoingMessage) res.statusMessage = STATUS_CODES[status] ?? '';
  for (const name of BODY_HEADERS) res.removeHeader(name);
  if (closeConnection && res instanceof OutgoingMessage) res.setHeader('connection', 'close');
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.setHeader('cache-control', 'no-store');
  if (!below) {
    res.end(text);
    return;
  }
  nativeMethod(res, 'writeHead').call(res, status);
  nativeMethod(res, 'end').call(res, text);
}

/** True when a prototype of `res` carries {@link installResponseHold}'s hook (its guards and held-state report). */
function inheritsInstalledHold(res: HttpResponse): boolean {
  for (
    let proto = Object.getPrototypeOf(res) as object | null;
    proto;
    proto = Object.getPrototypeOf(proto) as object | null
  )
    if (Object.hasOwn(proto, HOOKED)) return true;
  return false;
}

/** The response class's own `name` (Node's, or HTTP/2's), below every hold and every wrapper. */
function nativeMethod(
  res: HttpResponse,
  name: 'writeHead' | 'end' | 'setHeader' | 'removeHeader',
): ResponseMethod {
  for (
    let proto = Object.getPrototypeOf(res) as object | null;
    proto;
    proto = Object.getPrototypeOf(proto) as object | null
  )
    if (!Object.hasOwn(proto, HOOKED) && Object.hasOwn(proto, name))
      return (proto as Record<typeof name, ResponseMethod>)[name];
  throw new TypeError(`The response has no ${name} method: not a Node HTTP response.`);
}
