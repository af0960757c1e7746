import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

/**
 * The request object of the app's platform, as route handlers get it: Express's `Request` or
 * Fastify's `FastifyRequest`. What `hasConsent` receives (typed here by what the library reads of it).
 *
 * @example
 * const fromCookie = (request: PlatformRequest) => request.headers.cookie?.includes('consent=yes') ?? false;
 */
export interface PlatformRequest {
  readonly headers: IncomingHttpHeaders;
}

/** Node's request under the platform's (Express's request is one; Fastify's `request.raw`). */
export type RawRequest = IncomingMessage;
/** Node's response under the platform's (Express's response is one; Fastify's `reply.raw`). */
export type RawResponse = ServerResponse;
