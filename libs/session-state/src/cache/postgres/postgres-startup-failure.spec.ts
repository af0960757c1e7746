import { describePostgresStartupFailure } from './postgres-startup-failure.js';
import { resolvePostgresOptions } from './postgres-options.validator.js';

describe('describePostgresStartupFailure', () => {
  it("names PgBouncer's ignore_startup_parameters (or an own pool) when a pooler refuses the pool's statement_timeout", () => {
    const options = resolvePostgresOptions({
      connectionString: 'postgres://app:secret@db.internal:6432/shop',
    });
    const refused = Object.assign(new Error('unsupported startup parameter: statement_timeout'), {
      code: '08P01',
    });
    const { message } = describePostgresStartupFailure(refused, options, false);
    expect(message).toContain('ignore_startup_parameters = statement_timeout');
    expect(message).toContain('postgres.pool');
    expect(message).not.toContain('secret');
  });

  it('a server starting up (57P03) is not reported as a mistake in the connection string', () => {
    const options = resolvePostgresOptions({
      connectionString: 'postgres://app:secret@db.internal:5432/shop',
    });
    const starting = Object.assign(new Error('the database system is starting up'), { code: '57P03' });
    const { message } = describePostgresStartupFailure(starting, options, false);
    expect(message).toMatch(
      /^PostgreSQL at db\.internal:5432\/shop does not accept connections now \(starting up, shutting down or in recovery\): not a mistake in postgres\.connectionString\./,
    );
    expect(message).toContain('[57P03 the database system is starting up]');
  });
});
