import type { ConnectionOptions } from 'node:tls';
import type { Clock } from '../clock.js';
import { optionNames } from '../../options/option-names.check.js';

/**
 * A `pg` Pool the app already made. Typed by its shape rather than by pg's class, so the module's
 * options compile in apps that do not install pg (the memory store needs none).
 *
 * @example
 * import pg from 'pg';
 * SessionModule.forRoot({ postgres: { pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) } });
 */
export interface PostgresPoolLike {
  connect(): Promise<unknown>;
  query(...args: never[]): unknown;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * Sessions in PostgreSQL through the `pg` driver (an optional peer dependency). Give
 * `connectionString` or `pool`. One row per session (its values in a jsonb column), delta commits
 * through one function call, sliding idle expiry, expired rows deleted in bounded batches by a timer.
 * See docs/postgres.md.
 *
 * @example
 * SessionModule.forRoot({
 *   postgres: { connectionString: process.env.DATABASE_URL, schema: 'app', tableName: 'sessions',
 *               operationTimeoutInMilliseconds: 500 },
 * });
 */
export interface PostgresSessionOptions {
  /** `postgres://[user[:password]@]host[:port]/database[?sslmode=...]` (also `postgresql://`). */
  connectionString?: string | undefined;
  /** A `pg` Pool the app made; the module does not end it. Not with `connectionString`. */
  pool?: PostgresPoolLike | undefined;
  /** Schema of the sessions table. Default `public`. */
  schema?: string | undefined;
  /** Name of the sessions table. Default `nest_sessions`. */
  tableName?: string | undefined;
  /**
   * Create the tables (sessions, `<tableName>_users`, `<tableName>_locks`, `<tableName>_ended`), indexes and the
   * functions (`<tableName>_commit_v3`, `<tableName>_take_v1`) at startup when missing (idempotent).
   * Default true. `false`: create them by hand with the SQL in docs/postgres.md; startup then checks
   * that they exist and that the user may use them.
   */
  createTable?: boolean | undefined;
  /** TLS: `true`, or Node TLS options (for a private CA: `{ ca }`). Default: as the connection string says. */
  ssl?: boolean | ConnectionOptions | undefined;
  /** Most connections the module's pool opens. Default 10. */
  maxConnections?: number | undefined;
  /** Time allowed to connect at startup and for a new pool connection, in ms. Default 5000. */
  connectionTimeoutInMilliseconds?: number | undefined;
  /**
   * Time allowed to one session operation (connection from the pool included), in ms. Default 1000.
   * A commit that has not reached the database within it is refused there (it never lands after the
   * request was told it failed), and the module's pool sets `statement_timeout` to it.
   */
  operationTimeoutInMilliseconds?: number | undefined;
  /**
   * `true` (default): failures reach the caller (a session request gets a 503).
   * `false`: failures are logged and the session is unavailable for the request, which continues.
   */
  throwOnError?: boolean | undefined;
  /** How often expired sessions are deleted, in ms; 0 turns the timer off (prune by hand). Default 60 000. */
  pruneIntervalInMilliseconds?: number | undefined;
  /** Most expired sessions one prune statement deletes (it repeats, up to 10 times, while it fills batches). Default 1000. */
  pruneBatchSize?: number | undefined;
  /** Where expiry reads the time; replace it in tests to control expiry exactly. Default: the system clock. */
  clock?: Clock | undefined;
  /**
   * `true` (default): the store's statements are named prepared statements, parsed once per connection. `false`:
   * sent unnamed, parsed on every call, for a pooler in transaction mode (PgBouncer with `pool_mode = transaction`
   * before 1.21 or without `max_prepared_statements`, Supavisor, a cloud provider's pooled endpoint), which hands each
   * transaction any server connection, where a named statement prepared on another one does not exist.
   */
  preparedStatements?: boolean | undefined;
}

/** The names of {@link PostgresSessionOptions}, for the startup check of unknown names. */
export const POSTGRES_OPTION_NAMES = optionNames<PostgresSessionOptions>({
  connectionString: true,
  pool: true,
  schema: true,
  tableName: true,
  createTable: true,
  ssl: true,
  maxConnections: true,
  connectionTimeoutInMilliseconds: true,
  operationTimeoutInMilliseconds: true,
  throwOnError: true,
  pruneIntervalInMilliseconds: true,
  pruneBatchSize: true,
  clock: true,
  preparedStatements: true,
});

/** pg's and connect-pg-simple's names for options that are spelt differently here. */
export const POSTGRES_OPTION_ALIASES = {
  url: 'connectionString',
  conString: 'connectionString',
  conObject: 'connectionString',
  schemaName: 'schema',
  table: 'tableName',
  createTableIfMissing: 'createTable',
  max: 'maxConnections',
  connectionTimeoutMillis: 'connectionTimeoutInMilliseconds',
  statement_timeout: 'operationTimeoutInMilliseconds',
  query_timeout: 'operationTimeoutInMilliseconds',
  pruneSessionInterval: 'pruneIntervalInMilliseconds',
} as const satisfies Readonly<Record<string, keyof PostgresSessionOptions>>;

/** Options after validation and defaults. */
export interface ResolvedPostgresOptions {
  readonly connectionString?: string;
  readonly pool?: PostgresPoolLike;
  /** Host, port and database of `connectionString` (no credentials), for messages. */
  readonly where: string;
  readonly schema: string;
  readonly tableName: string;
  readonly createTable: boolean;
  readonly ssl?: boolean | ConnectionOptions;
  readonly maxConnections: number;
  readonly connectionTimeout: number;
  readonly operationTimeout: number;
  readonly throwOnError: boolean;
  readonly pruneInterval: number;
  readonly pruneBatchSize: number;
  readonly clock: Clock;
  readonly preparedStatements: boolean;
}
