// PostgreSQL for the benchmark: one database of its own on the machine's server (127.0.0.1:5432, trust
// auth; PGHOST/PGPORT/PGUSER override), created at the start and dropped at the end, shared by
// nest-session-state's store (table nest_sessions) and connect-pg-simple (table session). Also builds
// the two session setups, so bench/server.mjs only picks one.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const HOST = process.env.PGHOST ?? '127.0.0.1';
const PORT = Number(process.env.PGPORT ?? 5432);
const USER = process.env.PGUSER ?? 'postgres';

async function admin(statement) {
  const client = new pg.Client({ host: HOST, port: PORT, user: USER, database: 'postgres' });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A database named `nss_bench_<random>`, dropped by `drop()` (connections to it ended first). */
export class BenchDatabase {
  static async create() {
    const name = `nss_bench_${randomBytes(6).toString('hex')}`;
    await admin(`CREATE DATABASE ${name}`);
    return new BenchDatabase(name);
  }

  constructor(name) {
    this.name = name;
    this.url = `postgres://${USER}@${HOST}:${PORT}/${name}`;
  }

  async drop() {
    await admin(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
  }
}

/** The configurations that need the bench database. */
export const POSTGRES_CONFIGS = new Set(['nss-postgres', 'express-session-postgres']);

/** `SessionModule` options of nss-postgres. */
export function nssPostgresOptions(databaseUrl) {
  return { connectionString: databaseUrl };
}

/**
 * connect-pg-simple on a pg pool of the same size as the module's (10), its table created if missing,
 * ttl 20 min (nest-session-state's idleTimeout); its own pruning timer on, as apps run it.
 */
export async function connectPgSimpleStore(session, databaseUrl) {
  const { default: connectPgSimple } = await import('connect-pg-simple');
  const PgStore = connectPgSimple(session);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  const store = new PgStore({ pool, createTableIfMissing: true, ttl: 1200 });
  return {
    store,
    close: async () => {
      store.close();
      await pool.end();
    },
  };
}
