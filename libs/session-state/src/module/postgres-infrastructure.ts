import { MemoryDistributedCache } from '../cache/memory/memory.cache.js';
import type { DistributedCache } from '../cache/distributed-cache.interface.js';
import type { ResolvedPostgresOptions } from '../cache/postgres/postgres-session.options.js';
import { PostgresConnection } from '../cache/postgres/postgres.connection.js';
import { PostgresSessionStore } from '../session/stores/postgres-session.store.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';

/** What the postgres option builds: the connection (connected, schema ready), the store, and how to close them. */
export interface PostgresInfrastructure {
  readonly cache: DistributedCache;
  readonly store: SessionStore;
  close(): Promise<void>;
}

/**
 * The PostgreSQL half of the module's composition root. It is the only module file that reaches pg,
 * and SessionInfrastructure imports it on demand, so an app on another store never loads pg. Sessions go
 * to PostgreSQL; the injectable DistributedCache is the app's `cache` option, or one in memory.
 */
export async function createPostgresInfrastructure(
  postgres: ResolvedPostgresOptions,
  cache: DistributedCache | undefined,
): Promise<PostgresInfrastructure> {
  const connection = new PostgresConnection(postgres);
  await connection.connect();
  return {
    cache: cache ?? new MemoryDistributedCache({ clock: postgres.clock }),
    store: new PostgresSessionStore(connection),
    close: () => connection.close(),
  };
}
