import { EventEmitter } from 'node:events';
import { ServerResponse } from 'node:http';
import { SessionConfigurationError } from '../../errors/configuration.errors.js';
import type { PlatformRequest, RawRequest, RawResponse } from '../platform-request.js';
import {
  attachResponseHold,
  installResponseHold,
  ResponseHold,
  usesInstalledHold,
  type BeforeFirstByte,
} from '../response-hold.js';
import { isEncrypted, type HoldOf, type HttpPlatform, type RequestEntry } from './http-platform.js';
import type { PlatformAdapter } from './platform-adapter.js';
import { enterFirst } from './request-hook.chain.js';

/**
 * The one part of Express the library relies on beyond Nest's adapter: `app.response`, the prototype
 * Express gives every response of the app (Express documents it as the place to add response
 * methods). The response hold is installed there once rather than as own methods on each response,
 * which would change every response object's shape and slow later property accesses on it.
 */
interface ExpressApp {
  response?: unknown;
}

/** Express (`@nestjs/platform-express`): entry through Nest's request hook, hold on `app.response`. */
export class ExpressPlatform implements HttpPlatform {
  readonly name = 'express' as const;

  /**
   * Enters every request through the adapter's `setOnRequestHook` (Nest's first middleware, before
   * any `app.use()` one) and installs the response hold on the app's response prototype. The request's
   * state is attached earlier, from the app's Node server's `request` event (public Node API), when the
   * app has one: Express moves every request and response onto its own prototypes
   * (`Object.setPrototypeOf`) before any middleware, which gives each of them a map of its own in V8, so
   * a property added after that move costs a new map per request (bench/README.md, Node 20 against the
   * 2026-11-22 build). An app driven without its server (`app.getInstance()` called by another server)
   * is entered by the hook alone.
   * @throws SessionConfigurationError when the Express app has no usable `app.response`.
   */
  static install(adapter: PlatformAdapter, entry: RequestEntry, holdOf: HoldOf): ExpressPlatform {
    const app = adapter.getInstance<ExpressApp>();
    // Held state reported (`headersSent` once the head is held): Nest's exception filter and reply path ask, and
    // would otherwise write a second answer into a held one (a write after end, or a body past its Content-Length).
    installResponseHold(responsePrototypeOf(app), holdOf, { reportHeld: true });
    const server = adapter.getHttpServer?.();
    // http.Server or https.Server (both emit `request`).
    if (server instanceof EventEmitter)
      server.prependListener('request', (req: RawRequest, res: RawResponse) => entry.attach(req, req, res));
    enterFirst(adapter, (req, res, done) =>
      entry.enter(req as PlatformRequest, req as RawRequest, res as RawResponse, done),
    );
    return new ExpressPlatform();
  }

  isSecure(request: PlatformRequest, raw: RawRequest): boolean {
    const secure = (request as { secure?: unknown }).secure;
    return typeof secure === 'boolean' ? secure : isEncrypted(raw);
  }

  holdResponse(
    _raw: RawRequest,
    res: RawResponse,
    beforeFirstByte: BeforeFirstByte,
    onEarlyRelease: () => void,
  ): ResponseHold {
    // Middleware with its own write (compression) routes the writer's drain listeners off the response:
    // attachResponseHold notes them, and the hold calls them itself when it lets the writes go.
    const hold = new ResponseHold(res, beforeFirstByte, onEarlyRelease);
    // The held state is reported by app.response's getters, which find this same hold: reported per response too,
    // the getters would give each one a shape of its own (~20 us per request with compression).
    if (!usesInstalledHold(res)) attachResponseHold(res, hold);
    return hold;
  }
}

/** `app.response`, checked: an object whose prototype chain reaches Node's `ServerResponse`. */
function responsePrototypeOf(app: ExpressApp): object {
  const prototype = app.response;
  if (typeof prototype === 'object' && prototype !== null && prototype instanceof ServerResponse)
    return prototype;
  throw new SessionConfigurationError(
    'nest-session-state cannot hold Express responses: the Express app has no response prototype ' +
      '(app.response) inheriting from http.ServerResponse. Use Express 4 or 5 through @nestjs/platform-express, ' +
      'or run the app on Fastify (@nestjs/platform-fastify).',
  );
}
