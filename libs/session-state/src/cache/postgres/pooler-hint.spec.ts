import { poolerHint } from './pooler-hint.js';

describe('poolerHint', () => {
  it.each([
    ['42P05', 'prepared statement "nss_load" already exists'],
    ['26000', 'prepared statement "nss_commit" does not exist'],
  ])('names postgres.preparedStatements for a named statement a pooler moved (%s)', (code, message) => {
    expect(poolerHint(Object.assign(new Error(message), { code }))).toContain(
      'set postgres.preparedStatements to false',
    );
  });

  it('adds nothing to any other failure', () => {
    expect(poolerHint(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).toBe('');
    expect(poolerHint(new Error('timed out'))).toBe('');
  });
});
