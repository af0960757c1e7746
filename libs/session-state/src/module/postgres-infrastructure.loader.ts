import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { isMissingPackage } from './missing-package.js';
import type { DistributedCache } from '../cache/distributed-cache.interface.js';
import type { ResolvedPostgresOptions } from '../cache/postgres/postgres-session.options.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';

/**
 * Loads the PostgreSQL parts, which import pg: an optional peer, installed only by apps that use
 * PostgreSQL. Its absence becomes a startup error that says what to install, not ERR_MODULE_NOT_FOUND.
 * Only a dynamic import keeps pg out of the main entry's module graph (test/api/public-api.spec.ts).
 */
export async function loadPostgresInfrastructure(): Promise<{
  createPostgresInfrastructure(
    postgres: ResolvedPostgresOptions,
    cache: DistributedCache | undefined,
  ): Promise<{ cache: DistributedCache; store: SessionStore; close(): Promise<void> }>;
}> {
  try {
    return await import('./postgres-infrastructure.js');
  } catch (error) {
    if (isMissingPackage(error, 'pg')) {
      throw new SessionConfigurationError(
        'SessionModule option postgres needs the pg package, which is not installed. ' +
          'Run npm install pg (an optional peer dependency: apps on other stores do without it).',
      );
    }
    throw error;
  }
}
