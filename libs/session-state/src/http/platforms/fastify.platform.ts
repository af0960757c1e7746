import { ServerResponse } from 'node:http';
import type { PlatformRequest, RawRequest, RawResponse } from '../platform-request.js';
import { isWebSocketUpgrade } from '../websocket-upgrade.js';
import {
  attachResponseHold,
  installResponseHold,
  ResponseHold,
  usesInstalledHold,
  type BeforeFirstByte,
} from '../response-hold.js';
import type { HoldOf, HttpPlatform, RequestEntry } from './http-platform.js';
import type { PlatformAdapter } from './platform-adapter.js';
import { enterFirst } from './request-hook.chain.js';

/** The parts of Fastify's request and reply the entry uses (public Fastify API). */
interface FastifyRequestLike extends PlatformRequest {
  readonly raw: RawRequest;
  readonly protocol?: string;
}
interface FastifyReplyLike {
  readonly raw: RawResponse;
}
/** The part of the Fastify instance the platform uses: its Node server (public: `fastify.server`). */
interface FastifyInstanceLike {
  readonly server?: object;
}

/**
 * The one Node internal the library uses: the class a Node HTTP(S) server makes its responses with,
 * stored on the server under the symbol described `ServerResponse` (what `http.createServer({ ServerResponse })`
 * sets; Node 9.6 and later). Undefined when the server has none (HTTP/2, or Node changed it): the
 * platform then moves each held response onto the holding prototype instead (slower, same behaviour).
 */
export function serverResponseClassSlot(server: object | undefined): symbol | undefined {
  if (!server) return undefined;
  const slot = Object.getOwnPropertySymbols(server).find((s) => s.description === 'ServerResponse');
  const current = slot === undefined ? undefined : (server as Record<symbol, unknown>)[slot];
  const isResponseClass =
    typeof current === 'function' &&
    (current === ServerResponse || current.prototype instanceof ServerResponse);
  return isResponseClass ? slot : undefined;
}

/**
 * Fastify (`@nestjs/platform-fastify`): entry through Nest's request hook (Fastify's first
 * `onRequest` hook, before Nest middleware), the state on both `request` and `request.raw` (Nest
 * middleware gets the raw request), the hold on `reply.raw`, so `reply.send()`, `reply.redirect()`,
 * streams and direct `reply.raw` writes all wait for the commit alike.
 */
export class FastifyPlatform implements HttpPlatform {
  readonly name = 'fastify' as const;

  static install(adapter: PlatformAdapter, entry: RequestEntry, holdOf: HoldOf): FastifyPlatform {
    enterFirst(adapter, (request, reply, done) => {
      const fastifyRequest = request as FastifyRequestLike;
      // A WebSocket's upgrade (Mercurius's subscriptions and fullWsTransport) is not entered: no session, and the
      // connection's operations must not run in its context, which the accessors would read for every one of them.
      if (isWebSocketUpgrade(fastifyRequest.raw)) return done();
      entry.enter(fastifyRequest, fastifyRequest.raw, (reply as FastifyReplyLike).raw, done);
    });
    // This app's own prototype between its held responses and Node's: nothing else in the process sees it.
    const heldPrototype = Object.create(ServerResponse.prototype) as object;
    installResponseHold(heldPrototype, holdOf, { reportHeld: true });
    heldResponsesFromTheStart(adapter.getInstance<FastifyInstanceLike>().server, holdOf);
    return new FastifyPlatform(heldPrototype);
  }

  private constructor(private readonly heldPrototype: object) {}

  isSecure(request: PlatformRequest): boolean {
    return (request as FastifyRequestLike).protocol === 'https';
  }

  holdResponse(
    _raw: RawRequest,
    res: RawResponse,
    beforeFirstByte: BeforeFirstByte,
    onEarlyRelease: () => void,
  ): ResponseHold {
    const hold = new ResponseHold(res, beforeFirstByte, onEarlyRelease);
    // Made by the server's held response class: nothing to move or add.
    if (usesInstalledHold(res)) return hold;
    // A held response moves onto the app's holding prototype (as Express gives every response
    // app.response) instead of getting four own methods: own methods change each response's shape, and
    // every later property access of Node's http code on it goes slow (measured: ~20 µs per request).
    // A response on another prototype (a plugin's) keeps it and gets the methods.
    if (Object.getPrototypeOf(res) === ServerResponse.prototype)
      Object.setPrototypeOf(res, this.heldPrototype);
    else attachResponseHold(res, hold, { reportHeld: true });
    return hold;
  }
}

/**
 * Makes the app's Node server create every response as a subclass of its response class with the hold
 * installed (see {@link serverResponseClassSlot}): a held response then needs no prototype change. Moving
 * a response onto another prototype per request made V8 rebuild its map each time (~18k instructions per
 * request on Node 24, bench/README.md). Responses whose request holds nothing pass straight through.
 */
function heldResponsesFromTheStart(server: object | undefined, holdOf: HoldOf): void {
  const slot = serverResponseClassSlot(server);
  if (slot === undefined) return;
  const responses = server as Record<symbol, new (...args: never[]) => ServerResponse>;
  const HeldServerResponse = class extends responses[slot] {};
  installResponseHold(HeldServerResponse.prototype, holdOf, { reportHeld: true });
  responses[slot] = HeldServerResponse;
}
