import type pg from 'pg';
import {
  PostgresConnection,
  PostgresSessionStore,
  resolvePostgresOptions,
} from 'nest-session-state/postgres';
import { countingPool } from './counting-pool.js';
import { TestDatabase } from './test-database.js';

type StoreOptions = Omit<Parameters<typeof resolvePostgresOptions>[0], 'pool' | 'connectionString'>;

/** A {@link PostgresSessionStore} on a database of its own, over a {@link countingPool}. */
export interface CountedStore {
  readonly db: TestDatabase;
  readonly pool: pg.Pool;
  /** The names of the statements the store sent, in order (empty it between steps). */
  readonly statements: string[];
  readonly connection: PostgresConnection;
  readonly store: PostgresSessionStore;
  /** Closes the connection, ends the pool and drops the database. */
  close(): Promise<void>;
}

/**
 * Creates a database, a counting pool of `maxConnections` on it and a connected store with `options`.
 *
 * @example
 * const counted = await countedStore({ clock, pruneIntervalInMilliseconds: 0 });
 * await counted.store.commit('k', changes, 60_000); // counted.statements: ['nss_commit_set']
 * await counted.close();
 */
export async function countedStore(options: StoreOptions, maxConnections = 8): Promise<CountedStore> {
  const db = await TestDatabase.create();
  const { pool, statements } = countingPool(db.url(), maxConnections);
  const connection = new PostgresConnection(resolvePostgresOptions({ ...options, pool }));
  await connection.connect();
  return {
    db,
    pool,
    statements,
    connection,
    store: new PostgresSessionStore(connection),
    close: async () => {
      await connection.close();
      await pool.end();
      await db.drop();
    },
  };
}
