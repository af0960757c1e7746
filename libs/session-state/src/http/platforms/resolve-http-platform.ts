import { SessionConfigurationError } from '../../errors/configuration.errors.js';
import { ExpressPlatform } from './express.platform.js';
import { FastifyPlatform } from './fastify.platform.js';
import { SUPPORTED_PLATFORMS, type HoldOf, type HttpPlatform, type RequestEntry } from './http-platform.js';
import type { PlatformAdapter } from './platform-adapter.js';

const SUPPORTED = 'Express (@nestjs/platform-express) and Fastify (@nestjs/platform-fastify)';

/**
 * Enters every request of the app's HTTP platform through `entry`.
 * @throws SessionConfigurationError for an app without an HTTP adapter or on another platform.
 */
export function installHttpPlatform(
  adapter: PlatformAdapter | undefined,
  entry: RequestEntry,
  holdOf: HoldOf,
): HttpPlatform {
  const type = adapter?.getType();
  if (adapter && typeof adapter.setOnRequestHook === 'function') {
    if (type === 'express') return ExpressPlatform.install(adapter, entry, holdOf);
    if (type === 'fastify') return FastifyPlatform.install(adapter, entry, holdOf);
  }
  throw new SessionConfigurationError(unsupportedPlatformMessage(type));
}

/** The startup message for an app the library cannot serve (no HTTP adapter, or another one). */
export function unsupportedPlatformMessage(type: string | undefined): string {
  const runsOn =
    type === undefined
      ? 'this application has no HTTP server (a microservice or standalone application context)'
      : `this application runs on the HTTP platform '${type}'`;
  return (
    `SessionModule needs an HTTP application on ${SUPPORTED}, but ${runsOn}. ` +
    `Create the app with NestFactory.create(AppModule) or NestFactory.create(AppModule, new FastifyAdapter()), ` +
    `or import SessionModule only in the modules of your HTTP application.`
  );
}

export { SUPPORTED_PLATFORMS };
