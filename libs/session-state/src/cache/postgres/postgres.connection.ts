import { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Deadlines } from '../deadlines.js';
import { OutsideRequests } from '../outside-requests.js';
import { RedisClock } from '../redis/redis-clock.js';
import { PostgresConfigurationError, PostgresOperationError } from '../../errors/postgres.errors.js';
import { sslParametersOf } from './postgres-ssl-parameters.js';
import { describePostgresStartupFailure, isolationFailure, redact } from './postgres-startup-failure.js';
import { poolerHint } from './pooler-hint.js';
import { postgresSessionSql, privilegesSql, type PostgresSessionSql } from './postgres-session.sql.js';
import { missingGrants } from './postgres-grants.js';
import type { ResolvedPostgresOptions } from './postgres-session.options.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';
import { withoutRowData } from './without-row-data.js';

/** More than the operation deadlines' check interval (at most 50 ms). */
const DEADLINE_SLACK = 100;
/** Prune statements per timer tick at most, while each fills its batch. */
const PRUNE_ROUNDS = 10;

/** Pool connections that have the one 'error' listener {@link PostgresConnection.guard} gives them. */
const GUARDED = new WeakSet<pg.PoolClient>();
/** Pools that have the listeners {@link PostgresConnection.listenTo} gives them. */
const LISTENED_POOLS = new WeakSet<pg.Pool>();
/** The open PostgresConnections on each pool (more than one on an app's own pool shared by modules). */
const CONNECTIONS = new WeakMap<pg.Pool, Set<PostgresConnection>>();

function connectionsOf(pool: pg.Pool): Set<PostgresConnection> {
  let connections = CONNECTIONS.get(pool);
  if (!connections) CONNECTIONS.set(pool, (connections = new Set()));
  return connections;
}

/**
 * A `pg` pool with the store's failure semantics: every operation (taking a connection included) is
 * bounded by `operationTimeoutInMilliseconds`, a connection whose operation timed out is destroyed
 * (never reused half-way through a reply), outages are logged once, and the next operation after the
 * database is back simply works. Also creates or checks the schema at startup and prunes expired rows.
 *
 * @example
 * const connection = new PostgresConnection(resolvePostgresOptions({ connectionString: process.env.DATABASE_URL }));
 * await connection.connect(); // rejects within connectionTimeoutInMilliseconds, naming the option to fix
 * const store = new PostgresSessionStore(connection);
 * // ... on shutdown
 * await connection.close();
 */
@HiddenFromLogs()
export class PostgresConnection {
  private readonly logger = new Logger('PostgresConnection');
  readonly pool: pg.Pool;
  readonly sql: PostgresSessionSql;
  private readonly deadlines: Deadlines;
  /** Where the pool opens and releases connections: not in the request that asked (see OutsideRequests). */
  private readonly outsideRequests = new OutsideRequests();
  /** The database's clock as seen from here: commit deadlines are in it. */
  private readonly databaseClock = new RedisClock();
  private failing = false;
  private closed = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<unknown> | undefined;

  /**
   * Prepared statements are named per connection of the pool: `nss_` for the default table, with a digest of schema
   * and table otherwise, so modules that share an app's pool with different tables do not reuse one name for two
   * texts (pg refuses: "Prepared statements must be unique").
   */
  private readonly statementPrefix: string;

  constructor(readonly options: ResolvedPostgresOptions) {
    this.sql = postgresSessionSql(options.schema, options.tableName);
    this.statementPrefix =
      options.schema === 'public' && options.tableName === 'nest_sessions'
        ? 'nss_'
        : `nss_${createHash('sha256').update(`${options.schema}.${options.tableName}`).digest('hex').slice(0, 12)}_`;
    this.deadlines = new Deadlines(options.operationTimeout);
    this.pool =
      (options.pool as pg.Pool | undefined) ??
      new pg.Pool({
        connectionString: options.connectionString,
        ssl: options.ssl,
        max: options.maxConnections,
        connectionTimeoutMillis: options.connectionTimeout,
        // A statement the database runs after the app stopped waiting ends there too.
        statement_timeout: options.operationTimeout,
        application_name: 'nest-session-state',
        keepAlive: true,
      });
    PostgresConnection.listenTo(this.pool);
    connectionsOf(this.pool).add(this);
  }

  /**
   * The pool's listeners, once per pool for every connection on it, kept for the pool's life: an app's own pool
   * outlives the modules built on it (apps created and closed in turn), which must neither pile listeners up on
   * it nor leave it without one ('error' with no listener stops the process). An idle connection that dies
   * (database restart) is reported through the pool's 'error'. A new connection gets its own listener before the
   * pool hands it out: pg-pool drops its listener as it hands a new one over, and a FATAL that arrived with the
   * handshake (pg_terminate_backend) was emitted in between.
   */
  private static listenTo(pool: pg.Pool): void {
    if (LISTENED_POOLS.has(pool)) return;
    LISTENED_POOLS.add(pool);
    pool.on('error', (error: Error) => {
      for (const connection of connectionsOf(pool)) connection.reportFailure('idle connection', error);
    });
    pool.on('connect', (client: pg.PoolClient) => PostgresConnection.guard(pool, client));
  }

  /**
   * Listens to a checked-out connection's 'error' events. The pool listens only while a connection is idle;
   * one that dies while checked out (`pg_terminate_backend`, a failover) emits 'error' besides failing its
   * query, and an 'error' nobody listens to stops the process. Its query rejects on its own. One listener per
   * connection, whatever the number of modules on the pool.
   */
  private static guard(pool: pg.Pool, client: pg.PoolClient): void {
    if (GUARDED.has(client)) return;
    GUARDED.add(client);
    client.on('error', (error: Error) => {
      for (const connection of connectionsOf(pool)) connection.reportFailure('connection', error);
    });
  }

  /**
   * Connects at startup, creates the tables, indexes and commit function when missing (`createTable`)
   * and checks that the user may use them. Rejects with {@link PostgresConfigurationError}.
   */
  async connect(): Promise<void> {
    this.warnOfIgnoredSsl();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error('connection timeout'));
      }, this.options.connectionTimeout);
    });
    let client: pg.PoolClient | undefined;
    const connecting = this.pool.connect();
    try {
      client = await Promise.race([connecting, deadline]);
    } catch (error) {
      connecting.then(
        (late) => late.release(true),
        () => undefined,
      );
      this.detach();
      await this.endOwnPool();
      throw describePostgresStartupFailure(error, this.options, timedOut);
    } finally {
      clearTimeout(timer);
    }
    PostgresConnection.guard(this.pool, client);
    try {
      // A first reading of the database's clock, before the first commit needs a deadline in it.
      const { rows } = await client.query<{ now: string; isolation: string; no_statement_timeout: boolean }>(
        "SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now, current_setting('transaction_isolation') AS isolation, " +
          "current_setting('statement_timeout')::interval = interval '0' AS no_statement_timeout",
      );
      this.databaseClock.observe(Number(rows[0].now));
      if (rows[0].isolation !== 'read committed') throw isolationFailure(rows[0].isolation, this.options);
      if (rows[0].no_statement_timeout) this.warnOfNoStatementTimeout();
      await this.prepareSchema(client);
      client.release();
    } catch (error) {
      client.release(true);
      this.detach();
      await this.endOwnPool();
      if (error instanceof PostgresConfigurationError) throw error;
      throw this.schemaFailure(error);
    }
    if (this.options.pruneInterval > 0) {
      this.pruneTimer = setInterval(() => void this.pruneInBackground(), this.options.pruneInterval).unref();
    }
  }

  /**
   * The connections run statements without `statement_timeout` (an app's own `pool` without one, or PgBouncer
   * ignoring the module's): a statement that waits for a lock keeps its server connection after its request answered
   * 503 (the app destroys its side only), so a lock held for a minute leaves a backend per timed-out request, past the
   * pool's `max` (a probe: 24 backends after 25 s at 5 requests a second, `max` 10).
   */
  private warnOfNoStatementTimeout(): void {
    logEvent(
      this.logger,
      SessionLogEvents.PostgresWithoutStatementTimeout,
      'PostgreSQL runs the session statements without statement_timeout: a statement waiting for a lock (a ' +
        "migration's LOCK TABLE, a transaction holding a session's row) keeps its server connection after its " +
        "request answered 503, one more per such request, past the pool's max, until the lock is released. Set " +
        `statement_timeout on the connections the sessions use (new pg.Pool({ statement_timeout: ` +
        `${this.options.operationTimeout} }), or ALTER ROLE <user> SET statement_timeout behind PgBouncer): ` +
        'docs/postgres.md, "Timeouts, outages and late commits".',
    );
  }

  /**
   * `postgres.ssl` given with a connection string that carries TLS parameters: pg takes its TLS settings from those and
   * ignores `ssl` whole (a `ca` given there is not used; `sslmode=no-verify` does not check the certificate at all).
   * Not refused: an environment's connection string may set sslmode where the code sets ssl: true, to the same end.
   */
  private warnOfIgnoredSsl(): void {
    const { ssl, pool, connectionString } = this.options;
    const inUrl = sslParametersOf(connectionString);
    if (ssl === undefined || pool || inUrl.length === 0) return;
    logEvent(
      this.logger,
      SessionLogEvents.PostgresSslOptionIgnored,
      `postgres.ssl is ignored: postgres.connectionString carries ${inUrl.join(', ')}, and pg then takes its TLS ` +
        'settings from the connection string alone. Put them in one place: all in the connection string (sslmode, ' +
        'the CA as sslrootcert=<path to its PEM file>), or none there and all in postgres.ssl.',
    );
  }

  private async prepareSchema(client: pg.PoolClient): Promise<void> {
    const exists = async () =>
      (
        await client.query<{
          has_table: boolean;
          has_users_table: boolean;
          has_locks_table: boolean;
          has_ended_table: boolean;
          has_function: boolean;
          has_take_function: boolean;
          has_schema: boolean;
        }>(this.sql.check)
      ).rows[0];
    const complete = (f: typeof found) =>
      f.has_table &&
      f.has_users_table &&
      f.has_locks_table &&
      f.has_ended_table &&
      f.has_function &&
      f.has_take_function;
    let found = await exists();
    if (!complete(found) && this.options.createTable) {
      await client.query('BEGIN');
      try {
        // Instances starting together would otherwise race on CREATE ... IF NOT EXISTS.
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('nest-session-state schema'))`);
        for (const statement of this.sql.createSchema) await client.query(statement);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        const { code, message } = error as { code?: string; message?: string };
        if (code === '42501' && found.has_table) {
          // The sessions table is there (set up for an earlier version): say what is missing, not "the table".
          throw new PostgresConfigurationError(
            `PostgreSQL at ${this.options.where} has no ${missingParts(found, this.options.schema, this.options.tableName)}, ` +
              `and the user of postgres.${this.options.pool ? 'pool' : 'connectionString'} may not create them: run ` +
              "the SQL in docs/postgres.md as the table's owner (it creates only what is missing) and grant the user " +
              `what it lists, or grant it CREATE on schema "${this.options.schema}". [${code} ${redact(message ?? '')}]`,
            { cause: withoutRowData(error) },
          );
        }
        throw error;
      }
      found = await exists();
    }
    const { schema, tableName } = this.options;
    if (!complete(found)) {
      throw new PostgresConfigurationError(
        `PostgreSQL at ${this.options.where} has no ${missingParts(found, schema, tableName)}, and ` +
          'postgres.createTable is false: create the tables, indexes and function with the SQL in docs/postgres.md ' +
          '(it creates only what is missing), or set postgres.createTable to true.',
      );
    }
    const { missing, functions } = (
      await client.query<{ missing: string[]; functions: string[] }>(privilegesSql(this.sql))
    ).rows[0];
    if (missing.length > 0 || functions.length > 0) {
      const lacking = [...missingGrants(missing)];
      if (functions.length > 0)
        lacking.push(`EXECUTE on the function${functions.length > 1 ? 's' : ''} ${functions.join(', ')}`);
      throw new PostgresConfigurationError(
        `The PostgreSQL user of postgres.${this.options.pool ? 'pool' : 'connectionString'} lacks ` +
          `${lacking.join('; ')}: grant it what it lacks, or SELECT, INSERT, UPDATE, DELETE on the tables and ` +
          'EXECUTE on the functions as docs/postgres.md lists.',
      );
    }
  }

  private schemaFailure(error: unknown): PostgresConfigurationError {
    const { code, message } = error as { code?: string; message?: string };
    if (code === '42501') {
      return new PostgresConfigurationError(
        `The PostgreSQL user of postgres.${this.options.pool ? 'pool' : 'connectionString'} may not create the ` +
          `session table in schema "${this.options.schema}" (postgres.schema): grant it CREATE on the schema, or ` +
          'create the table with the SQL in docs/postgres.md and set postgres.createTable to false. ' +
          `[${code} ${redact(message ?? '')}]`,
        { cause: withoutRowData(error) },
      );
    }
    return describePostgresStartupFailure(error, this.options, false);
  }

  /**
   * The deadline for a commit (or a lock try) sent now, in the database's clock (epoch ms): the commit
   * function applies nothing, and a lock try takes nothing, when it runs later. It is the moment this process stops waiting for the reply, or
   * earlier (the estimate of the database's clock never runs ahead of it).
   */
  commitDeadline(): number {
    return this.databaseClock.now() + this.options.operationTimeout;
  }

  /** The database's time now, as estimated here (epoch ms; never ahead of the database's clock). */
  databaseNow(): number {
    return this.databaseClock.now();
  }

  /** A commit's reply carried the database's time (epoch ms): keeps {@link commitDeadline} exact. */
  observeDatabaseTime(ms: number): void {
    this.databaseClock.observe(ms);
  }

  /** The longest {@link execute} takes before it settles. */
  get longestExecution(): number {
    return this.options.operationTimeout + DEADLINE_SLACK;
  }

  /**
   * Runs one statement (a named, prepared one: parsed once per connection; unnamed without `preparedStatements`)
   * on a pooled connection, bounded by the operation timeout. Rejects with {@link PostgresOperationError}.
   */
  execute<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    let client: pg.PoolClient | undefined;
    let settled = false;
    const release = (destroy: boolean) => {
      if (settled) return;
      settled = true;
      // pg-pool arms the connection's idle timer here: out of the request, as the connection itself.
      this.outsideRequests.run(() => client?.release(destroy));
    };
    const connecting = this.outsideRequests.run(() => this.pool.connect());
    const run = connecting.then(async (connected) => {
      client = connected;
      PostgresConnection.guard(this.pool, connected);
      if (settled) {
        // Timed out while waiting for this connection: hand it back unused.
        settled = false;
        release(false);
        throw new Error('timed out');
      }
      const result = await connected.query<R>(
        this.options.preparedStatements
          ? { name: `${this.statementPrefix}${name}`, text, values }
          : { text, values },
      );
      release(false);
      return result;
    });
    const bounded = this.deadlines.bound(run, this.options.operationTimeout, () => {
      // A connection stuck mid-reply must not serve the next operation.
      release(true);
      return this.timeoutError(name);
    });
    return this.settled(bounded, name, () => release(true));
  }

  /**
   * Bounds an operation made of other executes (a caller waiting for a batched statement) by the
   * operation timeout from now, with execute's errors and outage reporting. `onTimeout` runs when the
   * caller stops waiting.
   */
  bound<T>(operation: Promise<T>, name: string, onTimeout: () => void): Promise<T> {
    const bounded = this.deadlines.bound(operation, this.options.operationTimeout, () => {
      onTimeout();
      return this.timeoutError(name);
    });
    return this.settled(bounded, name);
  }

  private timeoutError(name: string): PostgresOperationError {
    return new PostgresOperationError(
      `PostgreSQL operation ${name} timed out after operationTimeoutInMilliseconds=${this.options.operationTimeout}`,
      name,
    );
  }

  private settled<T>(operation: Promise<T>, name: string, onError?: () => void): Promise<T> {
    return operation.then(
      (result) => {
        if (this.failing) this.reportRecovery();
        return result;
      },
      (error: unknown) => {
        onError?.();
        const failure =
          error instanceof PostgresOperationError
            ? error
            : new PostgresOperationError(
                `PostgreSQL operation ${name} failed: ${redact((error as Error).message)}${poolerHint(error)}`,
                name,
                { cause: withoutRowData(error) },
              );
        this.reportFailure(name, failure);
        throw failure;
      },
    );
  }

  /**
   * Deletes expired sessions and ended-session marks in batches of `pruneBatchSize` each (through their
   * expiry indexes, skipping rows other instances are deleting), up to 10 batches while either fills its
   * batch; resolves with the number of sessions deleted.
   */
  async prune(): Promise<number> {
    let deleted = 0;
    for (let round = 0; round < PRUNE_ROUNDS; round++) {
      const result = await this.execute<{ deleted: number; marks: number }>('prune', this.sql.prune, [
        this.options.clock.now(),
        this.options.pruneBatchSize,
      ]);
      const { deleted: batch, marks } = result.rows[0];
      deleted += batch;
      if (batch < this.options.pruneBatchSize && marks < this.options.pruneBatchSize) break;
    }
    return deleted;
  }

  private async pruneInBackground(): Promise<void> {
    if (this.pruning || this.closed) return;
    this.pruning = this.prune().catch(() => undefined); // reported by execute
    await this.pruning;
    this.pruning = undefined;
  }

  private reportFailure(what: string, error: Error): void {
    if (this.failing || this.closed) return;
    this.failing = true;
    logEvent(
      this.logger,
      SessionLogEvents.SessionStoreUnavailable,
      `PostgreSQL is failing (${what}: ${redact(error.message)}); requests that need it fail or run without it ` +
        'until it answers again. Further failures are not logged until then.',
    );
  }

  private reportRecovery(): void {
    if (!this.failing) return;
    this.failing = false;
    logEvent(this.logger, SessionLogEvents.SessionStoreRecovered, 'PostgreSQL answers again.');
  }

  private async endOwnPool(): Promise<void> {
    if (!this.options.pool) await this.pool.end().catch(() => undefined);
  }

  /** This connection no longer hears the pool's failures: an app's own pool outlives it. */
  private detach(): void {
    if (this.options.pool) connectionsOf(this.pool).delete(this);
  }

  /** Stops pruning and ends the pool if this module created it (an app's own pool is left open). */
  async close(): Promise<void> {
    this.closed = true;
    this.detach();
    clearInterval(this.pruneTimer);
    await this.pruning;
    await this.endOwnPool();
  }
}

/**
 * What a database set up by hand lacks, named as docs/postgres.md creates it. One made for an earlier
 * version has `<tableName>_commit_v1` but not this version's `_locks` and `_ended` tables and `_commit_v3` and
 * `_take_v1` functions.
 */
function missingParts(
  found: {
    has_schema: boolean;
    has_table: boolean;
    has_users_table: boolean;
    has_locks_table: boolean;
    has_ended_table: boolean;
    has_function: boolean;
    has_take_function: boolean;
  },
  schema: string,
  tableName: string,
): string {
  if (!found.has_schema) return `schema "${schema}" (postgres.schema)`;
  if (!found.has_table) return `table "${schema}"."${tableName}" (postgres.tableName)`;
  const missing = [
    ...(found.has_users_table ? [] : [`table "${schema}"."${tableName}_users"`]),
    ...(found.has_locks_table ? [] : [`table "${schema}"."${tableName}_locks"`]),
    ...(found.has_ended_table ? [] : [`table "${schema}"."${tableName}_ended"`]),
    ...(found.has_function ? [] : [`function "${schema}"."${tableName}_commit_v3"`]),
    ...(found.has_take_function ? [] : [`function "${schema}"."${tableName}_take_v1"`]),
  ];
  const earlier =
    !found.has_function || !found.has_take_function || !found.has_locks_table || !found.has_ended_table
      ? ` (a database set up for an earlier version, whose function is "${tableName}_commit_v1" or "${tableName}_commit_v2", lacks them)`
      : '';
  return `${missing.join(', ')}${earlier}`;
}
