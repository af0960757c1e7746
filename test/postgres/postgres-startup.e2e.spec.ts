/**
 * The postgres option at startup of a real Nest app: option names and values checked before anything
 * connects, store options that exclude it, and a database that cannot be used reported naming the
 * option to fix, with the password never quoted.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import request from 'supertest';
import {
  ManualClock,
  MemoryDistributedCache,
  MemorySessionStore,
  PostgresConfigurationError,
  SessionConfigurationError,
  type SessionModuleOptions,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { TestDatabase } from '../support/postgres/index.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { freePort } from '../support/redis/index.js';

const SECRETS = ['Hq5wT1xZ8pLr3nYc6sWd0hJk9fBg2aEu7iOt4yRz1M'];
/** Options as an app builds them from configuration: the compiler cannot see their names. */
const fromConfig = (options: object): SessionModuleOptions => options;

/**
 * The schema script of docs/postgres.md as a previous version had it for table `name`: function `_commit_v1`, no
 * `_take_v1` function, no `_locks` and no `_ended` table (nor the latter's index).
 */
function previousVersion(schema: string, name: string): string {
  return schema
    .replaceAll('nest_sessions', name)
    .replaceAll('_commit_v3', '_commit_v1')
    .replace(new RegExp(`CREATE OR REPLACE FUNCTION "public"\\."${name}_take_v1"[\\s\\S]*?\\$fn\\$;`), '')
    .replace(
      new RegExp(`CREATE TABLE IF NOT EXISTS "public"\\."${name}_(locks|ended)" \\([^;]*\\);`, 'g'),
      '',
    )
    .replace(new RegExp(`CREATE INDEX IF NOT EXISTS "${name}_ended_until_idx" [^;]*;`), '');
}

async function startupError(options: SessionModuleOptions): Promise<{ error: Error; ms: number }> {
  const started = performance.now();
  try {
    const { app } = await startSessionApp({ secrets: SECRETS, ...options });
    await app.close();
  } catch (error) {
    return { error: error as Error, ms: performance.now() - started };
  }
  throw new Error('startup succeeded');
}

/** The SQL blocks of docs/postgres.md, as a user copies them: the schema script, then the grants. */
function docsSql(): string[] {
  const doc = readFileSync(new URL('../../docs/postgres.md', import.meta.url), 'utf8');
  return [...doc.matchAll(/```sql\n([\s\S]*?)\n```/g)].map((m) => m[1]);
}

/** Starts an app with `options` and reads the counter once: it starts, and its first request counts 1. */
async function countsOnce(options: Pick<SessionModuleOptions, 'postgres' | 'session'>): Promise<void> {
  const { app, url } = await startSessionApp({ secrets: SECRETS, ...options });
  try {
    await request(url).get('/counter').expect(200, { count: 1 });
  } finally {
    await app.close();
  }
}

describe('postgres options refused before connecting', () => {
  /** Nothing listens here: a module that tried to connect would fail differently (ECONNREFUSED). */
  let closed: string;
  beforeAll(async () => {
    closed = `postgres://app:hunter2@127.0.0.1:${await freePort()}/app`;
  });

  it.each([
    [
      'a misspelt name',
      () => ({ postgres: { conectionString: closed } }),
      'SessionModule option postgres.conectionString is unknown: did you mean postgres.connectionString?',
    ],
    [
      "pg's and connect-pg-simple's names",
      () => ({ postgres: { url: closed, createTableIfMissing: true } }),
      'SessionModule option postgres.url is unknown: did you mean postgres.connectionString?\n' +
        'SessionModule option postgres.createTableIfMissing is unknown: did you mean postgres.createTable?',
    ],
    [
      'a postgres name at the top level',
      () => ({ connectionString: closed }),
      'SessionModule option connectionString is unknown: did you mean postgres.connectionString?',
    ],
  ])('%s', async (_, options, message) => {
    const { error, ms } = await startupError(fromConfig(options()));
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toBe(message);
    expect(ms).toBeLessThan(2_000);
  });

  it.each([
    [
      'redis and postgres',
      () => ({ postgres: { connectionString: closed }, redis: { url: 'redis://127.0.0.1:1' } }),
      'SessionModule options redis and postgres exclude each other: each would hold the sessions. Remove one of them.',
    ],
    [
      'postgres and store',
      () => ({ postgres: { connectionString: closed }, store: new MemorySessionStore() }),
      'SessionModule options postgres and store exclude each other: postgres builds the session store, which store replaces. Remove one of them.',
    ],
    [
      'postgres and memory',
      () => ({ postgres: { connectionString: closed }, memory: { sizeLimit: 1024 } }),
      'SessionModule options postgres and memory exclude each other: memory configures the built-in memory store, ' +
        'which postgres replaces. Remove memory, or postgres to keep sessions in memory.',
    ],
  ])('%s exclude each other', async (_, options, message) => {
    const { error, ms } = await startupError(options());
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toBe(message);
    expect(ms).toBeLessThan(2_000);
  });

  it.each([
    ['not a URL', { connectionString: 'hunter2 at db' }, /postgres\.connectionString is not a valid URL/],
    [
      'another scheme',
      { connectionString: 'mysql://app:hunter2@db/app' },
      /must start with postgres:\/\/ or postgresql:\/\/ \(got mysql:\/\/\)/,
    ],
    ['neither connectionString nor pool', {}, /need postgres\.connectionString .* or postgres\.pool/],
    [
      'both',
      { connectionString: 'postgres://db/app', pool: new pg.Pool() },
      /connectionString and postgres\.pool exclude each other/,
    ],
    [
      'a table name that is not an identifier',
      { connectionString: 'postgres://db/app', tableName: 'sessions; drop' },
      /postgres\.tableName must be a plain identifier/,
    ],
    [
      'a negative timeout',
      { connectionString: 'postgres://db/app', operationTimeoutInMilliseconds: -1 },
      /postgres\.operationTimeoutInMilliseconds must be an integer from 1/,
    ],
  ])('a bad value: %s, naming the option, never the password', async (_, postgres, message) => {
    const { error } = await startupError(fromConfig({ postgres }));
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('hunter2');
  });

  it("a database name with a % that starts no %XX, which pg takes as it is: startup goes on to connect (it threw a bare URIError, 'URI malformed')", async () => {
    const { error } = await startupError({ postgres: { connectionString: `${closed}%zz` } });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toMatch(
      /^Nothing accepts connections at 127\.0\.0\.1:\d+\/app%zz \(ECONNREFUSED\)/,
    );
  });
});

describe('a database that cannot be used fails startup, naming the option', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await TestDatabase.create();
    // A user that may connect but not create anything in schema public (PostgreSQL 15's default).
    await db.query(`DROP ROLE IF EXISTS ${db.name}_app`);
    await db.query(`CREATE ROLE ${db.name}_app LOGIN PASSWORD 'hunter2'`);
  });
  afterAll(async () => {
    await db.drop();
    const admin = new pg.Client({ host: db.host, port: db.port, user: db.user, database: 'postgres' });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${db.name}_app`);
    await admin.end();
  });
  const at = () => `${db.host}:${db.port}`;
  /** The app's own user (no CREATE) on the table `owned`, which it may not create. */
  const ownedAsAppUser = () => ({
    connectionString: `postgres://${db.name}_app:hunter2@${at()}/${db.name}`,
    tableName: 'owned',
    createTable: false,
  });

  it('nothing listening (ECONNREFUSED): host and port, fast', async () => {
    const port = await freePort();
    const { error, ms } = await startupError({
      postgres: { connectionString: `postgres://app:hunter2@127.0.0.1:${port}/app` },
    });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain(`Nothing accepts connections at 127.0.0.1:${port}/app (ECONNREFUSED)`);
    expect(error.message).toContain('postgres.connectionString');
    expect(error.message).not.toContain('hunter2');
    expect(ms).toBeLessThan(2_000);
  });

  it('a user at its CONNECTION LIMIT (53300 for the role): names the limit, not the connection string', async () => {
    await db.query(`ALTER ROLE ${db.name}_app CONNECTION LIMIT 0`);
    try {
      const { error } = await startupError({
        postgres: { connectionString: `postgres://${db.name}_app:hunter2@${at()}/${db.name}` },
      });
      expect(error).toBeInstanceOf(PostgresConfigurationError);
      expect(error.message).toMatch(
        /refused the connection: the connection limit of the user or the database is reached .*ALTER ROLE <user> CONNECTION LIMIT n/,
      );
      expect(error.message).toContain('[53300 too many connections for role');
      expect(error.message).not.toContain('hunter2');
    } finally {
      await db.query(`ALTER ROLE ${db.name}_app CONNECTION LIMIT -1`);
    }
  });

  it('a database that does not exist', async () => {
    const { error } = await startupError({
      postgres: { connectionString: `postgres://${db.user}:hunter2@${at()}/${db.name}_missing` },
    });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain(
      'has no such database: check the database name in postgres.connectionString',
    );
    expect(error.message).not.toContain('hunter2');
  });

  it('a user that does not exist: the credentials', async () => {
    const { error } = await startupError({
      postgres: { connectionString: `postgres://nobody_${db.name}:hunter2@${at()}/${db.name}` },
    });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain(
      'rejected the credentials: check the user and password in postgres.connectionString',
    );
    expect(error.message).not.toContain('hunter2');
  });

  it('a user without CREATE on the schema: grant it, or create the table by hand and set createTable false', async () => {
    const { error } = await startupError({
      postgres: { connectionString: `postgres://${db.name}_app:hunter2@${at()}/${db.name}` },
    });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain('may not create the session table in schema "public" (postgres.schema)');
    expect(error.message).toContain('docs/postgres.md');
    expect(error.message).not.toContain('hunter2');
  });

  it('createTable false and no table: names postgres.tableName and the docs', async () => {
    const { error } = await startupError({
      postgres: { connectionString: db.url(), tableName: 'absent', createTable: false },
    });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain(
      'has no table "public"."absent" (postgres.tableName), and postgres.createTable is false',
    );
  });

  it('createTable false and a table the user may not write: names the grants', async () => {
    await (
      await startSessionApp({ postgres: { connectionString: db.url(), tableName: 'owned' } })
    ).app.close();
    await db.query(`GRANT SELECT ON owned, owned_users, owned_locks, owned_ended TO ${db.name}_app`);
    const { error } = await startupError({ postgres: ownedAsAppUser() });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain(
      'lacks INSERT, UPDATE, DELETE on "public"."owned"; INSERT, UPDATE, DELETE on "public"."owned_users"; ' +
        'INSERT, UPDATE, DELETE on "public"."owned_locks"; INSERT, UPDATE, DELETE on "public"."owned_ended": ' +
        'grant it what it lacks',
    );
  });

  it('a user missing some grants: the message names those only', async () => {
    await db.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON owned, owned_locks, owned_ended TO ${db.name}_app`,
    );
    await db.query(`GRANT SELECT, INSERT, UPDATE ON owned_users TO ${db.name}_app`);
    await db.query(`GRANT EXECUTE ON FUNCTION owned_commit_v3, owned_take_v1 TO ${db.name}_app`);
    const lacking = async () => {
      const { error } = await startupError({ postgres: ownedAsAppUser() });
      expect(error).toBeInstanceOf(PostgresConfigurationError);
      return error.message;
    };
    expect(await lacking()).toMatch(
      /^The PostgreSQL user of postgres\.connectionString lacks DELETE on "public"\."owned_users": grant it what it lacks/,
    );
    // PostgreSQL grants EXECUTE to PUBLIC by default: a locked-down database takes it away.
    await db.query(`REVOKE EXECUTE ON FUNCTION owned_commit_v3 FROM PUBLIC, ${db.name}_app`);
    expect(await lacking()).toContain(
      'lacks DELETE on "public"."owned_users"; EXECUTE on the function "public"."owned_commit_v3": grant it',
    );
    await db.query(`REVOKE EXECUTE ON FUNCTION owned_take_v1 FROM PUBLIC, ${db.name}_app`);
    expect(await lacking()).toContain(
      'EXECUTE on the functions "public"."owned_commit_v3", "public"."owned_take_v1": grant it',
    );
    await db.query(`REVOKE ALL ON owned, owned_users, owned_locks, owned_ended FROM ${db.name}_app`);
  });

  it('after the grants of docs/postgres.md, the same user works', async () => {
    await db.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON owned, owned_users, owned_locks, owned_ended TO ${db.name}_app`,
    );
    await db.query(`GRANT EXECUTE ON FUNCTION owned_commit_v3, owned_take_v1 TO ${db.name}_app`);
    await countsOnce({ postgres: ownedAsAppUser() });
  });

  it('the hand-migration SQL of docs/postgres.md, run as written, serves a user that may not create tables', async () => {
    const blocks = docsSql();
    expect(blocks).toHaveLength(2); // the schema, then the grants
    await db.query(blocks[0]);
    await db.query(blocks[1].replaceAll('app_user', `${db.name}_app`));
    const { app, url } = await startSessionApp({
      secrets: SECRETS,
      postgres: {
        connectionString: `postgres://${db.name}_app:hunter2@${at()}/${db.name}`,
        createTable: false,
      },
    });
    try {
      const first = await request(url).get('/counter').expect(200, { count: 1 });
      const cookie = (first.headers['set-cookie'] as unknown as string[])[0].split(';')[0];
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      expect(await db.query('SELECT count(*)::int AS n FROM public.nest_sessions')).toEqual([{ n: 1 }]);
    } finally {
      await app.close();
    }
  });

  it('a database set up for the previous version (commit_v1, no _locks, no _ended): createTable false names what is missing; the docs script and grants bring it up to date', async () => {
    const [schema, grants] = docsSql();
    const v1 = previousVersion(schema, 'old');
    await db.query(v1);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON old, old_users TO ${db.name}_app`);
    await db.query(`GRANT EXECUTE ON FUNCTION old_commit_v1 TO ${db.name}_app`);
    const postgres = {
      connectionString: `postgres://${db.name}_app:hunter2@${at()}/${db.name}`,
      tableName: 'old',
      createTable: false,
    };
    const { error } = await startupError({ postgres });
    expect(error).toBeInstanceOf(PostgresConfigurationError);
    expect(error.message).toContain(
      'has no table "public"."old_locks", table "public"."old_ended", function "public"."old_commit_v3", function ' +
        '"public"."old_take_v1" (a database set up for an earlier ' +
        'version, whose function is "old_commit_v1" or "old_commit_v2", lacks them), and postgres.createTable is false',
    );
    expect(error.message).toContain('docs/postgres.md');
    // createTable left on, and the app's user may not create in the schema: the same parts are named.
    const { error: upgrade } = await startupError({ postgres: { ...postgres, createTable: true } });
    expect(upgrade).toBeInstanceOf(PostgresConfigurationError);
    expect(upgrade.message).toContain(
      'has no table "public"."old_locks", table "public"."old_ended", function "public"."old_commit_v3", function ' +
        '"public"."old_take_v1" (a ' +
        'database set up for an earlier version, whose function is "old_commit_v1" or "old_commit_v2", lacks them), ' +
        'and the user of ' +
        'postgres.connectionString may not create them',
    );
    expect(upgrade.message).toContain('grant it CREATE on schema "public"');
    await db.query(schema.replaceAll('nest_sessions', 'old'));
    await db.query(grants.replaceAll('nest_sessions', 'old').replaceAll('app_user', `${db.name}_app`));
    const { app, url } = await startSessionApp({ secrets: SECRETS, postgres, session: { lock: true } });
    try {
      const first = await request(url).get('/counter').expect(200, { count: 1 });
      const cookie = (first.headers['set-cookie'] as unknown as string[])[0].split(';')[0];
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    } finally {
      await app.close();
    }
  });

  it('a database set up for the previous version, with createTable: creates the _locks and _ended tables, _commit_v3 beside commit_v1, and _take_v1', async () => {
    const [schema] = docsSql();
    await db.query(previousVersion(schema, 'older'));
    await countsOnce({
      postgres: { connectionString: db.url(), tableName: 'older' },
      session: { lock: true },
    });
    expect(
      await db.query(
        `SELECT to_regclass('older_locks') IS NOT NULL AS locks, to_regclass('older_ended') IS NOT NULL AS ended,
           count(*)::int AS functions
         FROM pg_proc WHERE proname IN ('older_commit_v1', 'older_commit_v3', 'older_take_v1')`,
      ),
    ).toEqual([{ locks: true, ended: true, functions: 3 }]);
  });

  it('a database set up by the development build before the take function (_commit_v2, no _take_v1): createTable false names the two functions; createTable adds them', async () => {
    const [schema] = docsSql();
    const v2 = schema
      .replaceAll('nest_sessions', 'mid')
      .replaceAll('_commit_v3', '_commit_v2')
      .replace(/CREATE OR REPLACE FUNCTION "public"\."mid_take_v1"[\s\S]*?\$fn\$;/, '');
    expect(v2).not.toContain('mid_take_v1');
    await db.query(v2);
    const postgres = { connectionString: db.url(), tableName: 'mid' };
    const { error } = await startupError({ postgres: { ...postgres, createTable: false } });
    expect(error.message).toContain(
      'has no function "public"."mid_commit_v3", function "public"."mid_take_v1" (a database set up for an earlier ' +
        'version, whose function is "mid_commit_v1" or "mid_commit_v2", lacks them), and postgres.createTable is false',
    );
    await countsOnce({ postgres });
    expect(
      await db.query(
        `SELECT count(*)::int AS functions FROM pg_proc WHERE proname IN ('mid_commit_v2', 'mid_commit_v3', 'mid_take_v1')`,
      ),
    ).toEqual([{ functions: 3 }]);
  });

  it('a database whose default isolation is not read committed: startup fails naming default_transaction_isolation (a sign-in racing a write would lose it silently there)', async () => {
    const strict = await TestDatabase.create();
    try {
      await strict.query(
        `ALTER DATABASE "${strict.name}" SET default_transaction_isolation = 'repeatable read'`,
      );
      const { error } = await startupError({ postgres: { connectionString: strict.url() } });
      expect(error).toBeInstanceOf(PostgresConfigurationError);
      expect(error.message).toMatch(
        /runs the session store's statements at the isolation level "repeatable read" \(default_transaction_isolation .* needs read committed/,
      );
      expect(error.message).toContain(
        "ALTER ROLE <user> SET default_transaction_isolation = 'read committed'",
      );
    } finally {
      await strict.drop();
    }
  });

  it('a mixed-case schema and table name (PascalCase, as ORMs name them) start, and start again on what they created', async () => {
    const postgres = { connectionString: db.url(), schema: 'MySchema', tableName: 'MySessions' };
    for (const run of [1, 2]) {
      const { app, url } = await startSessionApp({ secrets: SECRETS, postgres });
      try {
        await request(url).get('/counter').expect(200, { count: 1 });
      } finally {
        await app.close();
      }
      expect(await db.query('SELECT count(*)::int AS n FROM "MySchema"."MySessions"')).toEqual([{ n: run }]);
    }
    // Created once, under exactly these names (not folded to lower case).
    expect(
      await db.query(
        `SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('MySessions', 'MySessions_users')`,
      ),
    ).toEqual([{ n: 2 }]);
  });

  it("an app's pool without statement_timeout: startup warns (PostgresWithoutStatementTimeout) naming the setting; the module's own pool, or a pool with one, does not", async () => {
    const warningsWith = async (postgres: NonNullable<SessionModuleOptions['postgres']>) => {
      const logger = new CaptureLogger();
      const { app } = await startSessionApp({ secrets: SECRETS, postgres }, { logger });
      await app.close();
      return logger.lines.filter((l) => l.message.startsWith('[PostgresWithoutStatementTimeout]'));
    };
    const bare = new pg.Pool({ connectionString: db.url(), max: 2 });
    const bounded = new pg.Pool({ connectionString: db.url(), max: 2, statement_timeout: 1000 });
    try {
      const warned = await warningsWith({ pool: bare, operationTimeoutInMilliseconds: 1500 });
      expect(warned).toHaveLength(1);
      expect(warned[0].message).toContain("past the pool's max");
      expect(warned[0].message).toContain('new pg.Pool({ statement_timeout: 1500 })');
      expect(await warningsWith({ pool: bounded })).toEqual([]);
      expect(await warningsWith({ connectionString: db.url() })).toEqual([]);
    } finally {
      await bare.end();
      await bounded.end();
    }
  });

  it('postgres.ssl with sslmode in the connection string: startup warns (PostgresSslOptionIgnored) that pg uses the latter alone; either alone does not', async () => {
    const warningsWith = async (postgres: NonNullable<SessionModuleOptions['postgres']>) => {
      const logger = new CaptureLogger();
      const { app, url } = await startSessionApp({ secrets: SECRETS, postgres }, { logger });
      try {
        await request(url).get('/counter').expect(200, { count: 1 });
      } finally {
        await app.close();
      }
      return logger.lines.filter((l) => l.message.startsWith('[PostgresSslOptionIgnored]'));
    };
    const withSslMode = `${db.url()}${db.url().includes('?') ? '&' : '?'}sslmode=disable`;
    // pg connects as sslmode says (this server has no TLS): ssl: true is not used.
    const warned = await warningsWith({ connectionString: withSslMode, ssl: true });
    expect(warned).toHaveLength(1);
    expect(warned[0].level).toBe('warn');
    expect(warned[0].message).toMatch(
      /postgres\.ssl is ignored: postgres\.connectionString carries sslmode=disable, .* all in the connection string \(sslmode, the CA as sslrootcert=<path to its PEM file>\), or none there and all in postgres\.ssl\./,
    );
    // ssl=0 in the connection string turns TLS off as well (pg reads ssl= too).
    const withSsl0 = `${db.url()}${db.url().includes('?') ? '&' : '?'}ssl=0`;
    expect(await warningsWith({ connectionString: withSsl0, ssl: true })).toEqual([
      expect.objectContaining({ message: expect.stringContaining('carries ssl=0,') }),
    ]);
    expect(await warningsWith({ connectionString: withSslMode })).toEqual([]);
    expect(await warningsWith({ connectionString: db.url(), ssl: false })).toEqual([]);
  });

  it('every documented option, set at once, starts (with cache as the injectable DistributedCache)', async () => {
    const { app, url } = await startSessionApp({
      secrets: SECRETS,
      cache: new MemoryDistributedCache(),
      postgres: {
        connectionString: db.url(),
        schema: 'every_option',
        tableName: 'sessions_all',
        createTable: true,
        ssl: false,
        maxConnections: 3,
        connectionTimeoutInMilliseconds: 2_000,
        operationTimeoutInMilliseconds: 2_000,
        throwOnError: false,
        pruneIntervalInMilliseconds: 0,
        pruneBatchSize: 10,
        clock: new ManualClock(Date.now()),
        preparedStatements: false,
      },
    });
    try {
      await request(url).get('/counter').expect(200, { count: 1 });
      expect(await db.query('SELECT count(*)::int AS n FROM every_option.sessions_all')).toEqual([{ n: 1 }]);
    } finally {
      await app.close();
    }
  });
});
