import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The machine's PostgreSQL (trust auth): `PGHOST`/`PGPORT`/`PGUSER` override 127.0.0.1:5432 and postgres. */
const HOST = process.env.PGHOST ?? '127.0.0.1';
const PORT = Number(process.env.PGPORT ?? 5432);
const USER = process.env.PGUSER ?? 'postgres';

function adminClient(): pg.Client {
  return new pg.Client({ host: HOST, port: PORT, user: USER, database: 'postgres' });
}

/**
 * A database of its own for one test file, on the machine's PostgreSQL: created with a unique name
 * (`nss_test_<random>`), dropped by {@link drop} (connections to it are ended first). Never touches
 * another database.
 *
 * @example
 * const db = await TestDatabase.create();
 * afterAll(() => db.drop());
 * SessionModule.forRoot({ postgres: { connectionString: db.url } });
 */
export class TestDatabase {
  private readonly pools: pg.Pool[] = [];

  private constructor(
    readonly name: string,
    readonly host: string,
    readonly port: number,
    readonly user: string,
  ) {}

  static async create(): Promise<TestDatabase> {
    const name = `nss_test_${randomBytes(6).toString('hex')}`;
    const admin = adminClient();
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    return new TestDatabase(name, HOST, PORT, USER);
  }

  /** `postgres://user@host:port/name`, or through another host and port (a proxy). */
  url(via?: { host: string; port: number }): string {
    return `postgres://${this.user}@${via?.host ?? this.host}:${via?.port ?? this.port}/${this.name}`;
  }

  /** A pool on this database for the test's own queries; ended by {@link drop}. */
  admin(): pg.Pool {
    const pool = new pg.Pool({ connectionString: this.url(), max: 2 });
    pool.on('error', () => undefined); // an idle connection ended by allowConnections(false)
    this.pools.push(pool);
    return pool;
  }

  /** Runs one statement as the superuser on this database. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<R[]> {
    return (await (this.pools[0] ?? this.admin()).query<R>(text, values)).rows;
  }

  /** Ends every connection to this database (`pg_terminate_backend`), as an administrator or a failover does. */
  async terminateBackends(): Promise<void> {
    const admin = adminClient();
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
        this.name,
      ]);
    } finally {
      await admin.end();
    }
  }

  /**
   * Outage on demand: `false` makes this database refuse new connections and ends every open one (as a
   * restart would), the test's own pools included; `true` lets connections in again.
   */
  async allowConnections(allow: boolean): Promise<void> {
    const admin = adminClient();
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${this.name} WITH ALLOW_CONNECTIONS ${allow}`);
    } finally {
      await admin.end();
    }
    if (!allow) await this.terminateBackends();
  }

  /** Ends the test's pools and drops the database, ending any connection still open to it. */
  async drop(): Promise<void> {
    await Promise.all(this.pools.splice(0).map((pool) => pool.end()));
    const admin = adminClient();
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}
