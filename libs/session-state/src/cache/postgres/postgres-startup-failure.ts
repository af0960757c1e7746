import { redactCredentials } from '../../options/redact-credentials.js';
import { PostgresConfigurationError } from '../../errors/postgres.errors.js';
import type { ResolvedPostgresOptions } from './postgres-session.options.js';

interface PgErrorLike {
  code?: string;
  message?: string;
}

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
  if (/SSL|TLS|certificate/i.test(message)) {
    return make(`The TLS handshake with ${at} failed: check postgres.ssl (and sslmode in ${source}).`);
  }
  return make(`Could not use ${at}: check ${source}.`);
}

/** Messages from pg may quote a connection string; never its password. */
export const redact = redactCredentials;
