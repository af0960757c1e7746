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
});
