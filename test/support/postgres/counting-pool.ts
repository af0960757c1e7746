import pg from 'pg';

/**
 * A pg pool that records the name of every statement its connections send (a named, prepared
 * statement's `name`, else the SQL's first word), for tests that count round trips. Pass it as
 * `postgres.pool`; the module leaves a pool it was given open, so end it after the app.
 *
 * @example
 * const { pool, statements } = countingPool(db.url(), 4);
 * await request(url).get('/counter').set('Cookie', cookie); // statements: ['nss_load', 'nss_commit_update']
 */
export function countingPool(connectionString: string, max: number): { pool: pg.Pool; statements: string[] } {
  const statements: string[] = [];
  const pool = new pg.Pool({ connectionString, max });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
      const config = args[0] as { name?: string } | string;
      // Named without the table's digest (another table than the default's: nss_<digest>_load), as for the default.
      const name = typeof config === 'string' ? config.split(' ')[0] : (config.name ?? '?');
      statements.push(name.replace(/^nss_[0-9a-f]{12}_/, 'nss_'));
      return query(...args);
    };
  });
  return { pool, statements };
}
