import type { PlatformRequest, RawRequest, RawResponse } from '../http-exchange.js';
import { attachResponseHold, ResponseHold, type BeforeFirstByte } from '../response-hold.js';
import type { HttpPlatform, RequestEntry } from './http-platform.js';
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

  static install(adapter: PlatformAdapter, entry: RequestEntry): FastifyPlatform {
    adapter.setOnRequestHook((request, reply, done) => {
      const fastifyRequest = request as FastifyRequestLike;
      entry.enter(fastifyRequest, fastifyRequest.raw, (reply as FastifyReplyLike).raw, done);
    });
    return new FastifyPlatform();
  }

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
    attachResponseHold(res, hold);
    return hold;
  }
}
