import { AbstractHttpAdapter } from '@nestjs/core';
import { SessionConfigurationError } from '../../errors/configuration.errors.js';
import { ExpressPlatform } from './express.platform.js';
import { FastifyPlatform } from './fastify.platform.js';
import { SUPPORTED_PLATFORMS, type HoldOf, type HttpPlatform, type RequestEntry } from './http-platform.js';
import type { PlatformAdapter } from './platform-adapter.js';

const SUPPORTED = 'Express (@nestjs/platform-express) and Fastify (@nestjs/platform-fastify)';
/** The first release of Nest's Express and Fastify adapters with `setOnRequestHook`. */
const FIRST_WITH_REQUEST_HOOK = '11.1.4';

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
  if (adapter && hasRequestHook(adapter)) {
    if (type === 'express') return ExpressPlatform.install(adapter, entry, holdOf);
    if (type === 'fastify') return FastifyPlatform.install(adapter, entry, holdOf);
  }
  if (adapter && (type === 'express' || type === 'fastify')) {
    // An adapter older than the hook: the generic message would name the very platform the app runs on.
    // Beside a newer @nestjs/core the app started instead, and every accessor in a middleware threw.
    const platform = `@nestjs/platform-${type}`;
    throw new SessionConfigurationError(
      `SessionModule needs ${platform} ${FIRST_WITH_REQUEST_HOOK} or later: this app's adapter has no ` +
        `setOnRequestHook, through which the module enters every request. Upgrade it with its Nest packages: ` +
        `npm install ${platform}@^${FIRST_WITH_REQUEST_HOOK} @nestjs/common@^${FIRST_WITH_REQUEST_HOOK} ` +
        `@nestjs/core@^${FIRST_WITH_REQUEST_HOOK}`,
    );
  }
  throw new SessionConfigurationError(unsupportedPlatformMessage(type));
}

/**
 * Whether the adapter calls a request hook. Newer @nestjs/core releases give every adapter a `setOnRequestHook` that
 * does nothing (11.2 does), which Express's and Fastify's adapters before 11.1.4 do not override.
 */
function hasRequestHook(adapter: PlatformAdapter): boolean {
  const setHook = adapter.setOnRequestHook as unknown;
  return (
    typeof setHook === 'function' &&
    setHook !== (AbstractHttpAdapter.prototype as { setOnRequestHook?: unknown }).setOnRequestHook
  );
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
