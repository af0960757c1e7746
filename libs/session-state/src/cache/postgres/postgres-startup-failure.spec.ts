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

  it.each([
    [
      'a certificate for another host name',
      {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        message:
          "Hostname/IP does not match certificate's altnames: Host: db.internal. is not in the cert's altnames: DNS:localhost",
      },
      /does not list the host it was reached by: connect by a name the certificate lists \(pg checks the certificate against the host in postgres\.connectionString\)\./,
    ],
    [
      'a private CA not given',
      { code: 'SELF_SIGNED_CERT_IN_CHAIN', message: 'self-signed certificate in certificate chain' },
      /not signed by a CA this process trusts .*: give that CA certificate \(PEM\) as ca in postgres\.ssl, or add it to NODE_EXTRA_CA_CERTS\./,
    ],
    [
      'an expired certificate',
      { code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' },
      /its certificate has expired: renew it on the server/,
    ],
    [
      'a private CA not given, with sslmode in the connection string (pg ignores postgres.ssl then)',
      {
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        message: 'unable to verify the first certificate',
        sslmode: true,
      },
      /pg takes its TLS settings from postgres\.connectionString \(sslmode=verify-full\), not postgres\.ssl: give the CA there as sslrootcert=<path to the CA certificate's PEM file>, or remove its ssl parameters and give postgres\.ssl: \{ ca \}\./,
    ],
  ])('a TLS handshake refused for %s says what to change', (_name, tls, expected) => {
    const options = resolvePostgresOptions({
      connectionString: `postgres://app@db.internal:5432/shop${'sslmode' in tls ? '?sslmode=verify-full' : ''}`,
      ssl: true,
    });
    const failure = Object.assign(new Error(tls.message), { code: tls.code });
    const { message } = describePostgresStartupFailure(failure, options, false);
    expect(message).toMatch(/^The TLS handshake with PostgreSQL at db\.internal:5432\/shop failed: /);
    expect(message).toMatch(expected);
  });

  it('a certificate for another name, reached by IP address: servername in postgres.ssl is offered too (pg keeps it for an IP)', () => {
    const options = resolvePostgresOptions({
      connectionString: 'postgres://app@10.0.0.5:5432/shop',
      ssl: true,
    });
    const failure = Object.assign(
      new Error(
        "Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list: ",
      ),
      { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    );
    expect(describePostgresStartupFailure(failure, options, false).message).toMatch(
      /connect by a name the certificate lists \(pg checks the certificate against the host in postgres\.connectionString\), or give that name as servername in postgres\.ssl\./,
    );
  });
});
