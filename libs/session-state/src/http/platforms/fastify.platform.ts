import { ServerResponse } from 'node:http';
import type { PlatformRequest, RawRequest, RawResponse } from '../platform-request.js';
import {
  attachResponseHold,
  installResponseHold,
  ResponseHold,
  type BeforeFirstByte,
} from '../response-hold.js';
import type { HoldOf, HttpPlatform, RequestEntry } from './http-platform.js';
import type { PlatformAdapter } from './platform-adapter.js';

/** The parts of Fastify's request and reply the entry uses (public Fastify API). */
interface FastifyRequestLike extends PlatformRequest {
  readonly raw: RawRequest;
  readonly protocol?: string;
}
interface FastifyReplyLike {
  readonly raw: RawResponse;
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
    adapter.setOnRequestHook((request, reply, done) => {
      const fastifyRequest = request as FastifyRequestLike;
      entry.enter(fastifyRequest, fastifyRequest.raw, (reply as FastifyReplyLike).raw, done);
    });
    // This app's own prototype between its held responses and Node's: nothing else in the process sees it.
    const heldPrototype = Object.create(ServerResponse.prototype) as object;
    installResponseHold(heldPrototype, holdOf);
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
    // Fastify writes reply.raw itself (writeHead, then end or a pipe that listens for its drain).
    const hold = new ResponseHold(res, beforeFirstByte, true, onEarlyRelease);
    // A held response moves onto the app's holding prototype (as Express gives every response
    // app.response) instead of getting four own methods: own methods change each response's shape, and
    // every later property access of Node's http code on it goes slow (measured: ~20 µs per request).
    // A response on another prototype (a plugin's) keeps it and gets the methods.
    if (Object.getPrototypeOf(res) === ServerResponse.prototype)
      Object.setPrototypeOf(res, this.heldPrototype);
    else attachResponseHold(res, hold);
    return hold;
  }
}
