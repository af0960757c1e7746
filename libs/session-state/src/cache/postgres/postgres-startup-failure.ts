import { redactCredentials } from '../../options/redact-credentials.js';
import { PostgresConfigurationError } from '../../errors/postgres.errors.js';
import type { ResolvedPostgresOptions } from './postgres-session.options.js';
import { tlsFailureAdvice, tlsFailureOf, type TlsFailure } from '../tls-failure.js';
import { connectsByIp, sslParametersOf } from './postgres-ssl-parameters.js';

interface PgErrorLike {
  code?: string;
  message?: string;
}

/** SQLSTATEs of a server that refuses connections for now, with what it is doing. */
const UNAVAILABLE_NOW: ReadonlyMap<string, string> = new Map([
  ['57P03', 'starting up, shutting down or in recovery'],
  ['57P01', 'shutting down, or the connection was terminated'],
  ['57P02', 'restarting after a crash'],
  ['53300', 'too many connections'],
]);

/** Turns what pg reported while connecting at startup into an error that names the option to fix. */
export function describePostgresStartupFailure(
  failure: unknown,
  options: ResolvedPostgresOptions,
  timedOut: boolean,
): PostgresConfigurationError {
  const { code = '', message = String(failure) } = (failure ?? {}) as PgErrorLike;
  const at = `PostgreSQL at ${options.where}`;
  const source = options.pool ? 'postgres.pool' : 'postgres.connectionString';
  const make = (text: string) =>
    new PostgresConfigurationError(`${text} [${`${code} ${redact(message)}`.trim()}]`, { cause: failure });
  if (timedOut) {
    return make(
      `Could not connect to ${at} within postgres.connectionTimeoutInMilliseconds=${options.connectionTimeout}: ` +
        `check the host and port in ${source} and the network.`,
    );
  }
  if (code === '28P01' || code === '28000') {
    return make(`${at} rejected the credentials: check the user and password in ${source}.`);
  }
  if (code === '3D000') return make(`${at} has no such database: check the database name in ${source}.`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return make(`The host of ${at} cannot be resolved: check the host in ${source}.`);
  }
  if (code === 'ECONNREFUSED') {
    return make(
      `Nothing accepts connections at ${options.where} (ECONNREFUSED): check the host and port in ${source} and that PostgreSQL runs.`,
    );
  }
  if (code === '53300' && /for (role|database)/i.test(message)) {
    // A CONNECTION LIMIT of the role or the database: a setting, which no wait changes.
    return make(
      `${at} refused the connection: the connection limit of the user or the database is reached (its ` +
        'CONNECTION LIMIT, counting every client of it). Raise it (ALTER ROLE <user> CONNECTION LIMIT n) or ' +
        'lower postgres.maxConnections and the other clients of that user.',
    );
  }
  if (UNAVAILABLE_NOW.has(code)) {
    // The connection settings are right: the server refuses connections for now (starting up, shutting down, full).
    return make(
      `${at} does not accept connections now (${UNAVAILABLE_NOW.get(code)}): not a mistake in ${source}. Start ` +
        'the app once PostgreSQL accepts connections (a health check the app waits for, a restart policy).',
    );
  }
  if (code === '08P01' && /unsupported startup parameter/i.test(message)) {
    // PgBouncer refuses startup parameters it does not know, the module's pool's statement_timeout among them.
    return make(
      `${at} (a pooler such as PgBouncer) refused a startup parameter of the module's pool: add ` +
        'ignore_startup_parameters = statement_timeout to pgbouncer.ini (or pass your own pool as postgres.pool), ' +
        'and set the timeout for the user instead: ALTER ROLE <user> SET statement_timeout = ' +
        `${options.operationTimeout}.`,
    );
  }
  const tlsFailure = tlsFailureOf(`${code} ${message}`);
  if (tlsFailure)
    return make(`The TLS handshake with ${at} failed: ${postgresTlsAdvice(tlsFailure, options)}.`);
  if (/SSL|TLS|certificate/i.test(message)) {
    return make(`The TLS handshake with ${at} failed: check postgres.ssl (and sslmode in ${source}).`);
  }
  return make(`Could not use ${at}: check ${source}.`);
}

/** What to change for a refused certificate, in the place pg takes its TLS settings from. */
function postgresTlsAdvice(failure: TlsFailure, options: ResolvedPostgresOptions): string {
  if (options.pool) return tlsFailureAdvice(failure, 'the ssl option of the pool passed as postgres.pool');
  const inUrl = sslParametersOf(options.connectionString);
  if (failure === 'hostname') {
    // pg sends the host as the name to check (servername), over any servername given, unless it is an IP address.
    return (
      'its certificate does not list the host it was reached by: connect by a name the certificate lists (pg ' +
      'checks the certificate against the host in postgres.connectionString' +
      (connectsByIp(options.connectionString) && inUrl.length === 0
        ? '), or give that name as servername in postgres.ssl'
        : ')')
    );
  }
  if (failure === 'untrusted' && inUrl.length > 0) {
    return (
      'its certificate is not signed by a CA this process trusts, and pg takes its TLS settings from ' +
      `postgres.connectionString (${inUrl.join(', ')}), not postgres.ssl: give the CA there as ` +
      "sslrootcert=<path to the CA certificate's PEM file>, or remove its ssl parameters and give postgres.ssl: { ca }"
    );
  }
  return tlsFailureAdvice(failure, 'postgres.ssl');
}

/** Messages from pg may quote a connection string; never its password. */
export const redact = redactCredentials;

/**
 * The database runs the store's statements at `isolation`, not read committed. The store's statements each read what
 * committed before them, and its functions each of their statements afresh (a take that waited for a commit of its
 * session takes what it stored): PostgreSQL's default. Under a stricter default, a sign-in racing a write would lose
 * the write without an error.
 */
export function isolationFailure(
  isolation: string,
  options: ResolvedPostgresOptions,
): PostgresConfigurationError {
  const source = options.pool ? 'pool' : 'connectionString';
  return new PostgresConfigurationError(
    `PostgreSQL at ${options.where} runs the session store's statements at the isolation level "${isolation}" ` +
      `(default_transaction_isolation of the database, of the user of postgres.${source}, or of its connections), ` +
      "but the store needs read committed, PostgreSQL's default: set default_transaction_isolation to " +
      "'read committed' for that user (ALTER ROLE <user> SET default_transaction_isolation = 'read committed'), " +
      'or give the session module connections of its own that use it.',
  );
}
