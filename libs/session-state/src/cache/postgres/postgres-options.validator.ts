import { systemClock } from '../clock.js';
import { describeOptionValue, UnknownOptionNames } from '../../options/option-names.check.js';
import { quoteRedacted } from '../../options/redact-credentials.js';
import { PostgresConfigurationError } from '../../errors/postgres.errors.js';
import {
  POSTGRES_OPTION_ALIASES,
  POSTGRES_OPTION_NAMES,
  type PostgresSessionOptions,
  type ResolvedPostgresOptions,
} from './postgres-session.options.js';
import { integerOption as integerWithin } from '../../options/integer-option.js';

/** Unquoted identifiers only: the table's name also names its index and commit function (63 bytes at most). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

const fail = (message: string): never => {
  throw new PostgresConfigurationError(message);
};

function integerOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  return integerWithin(fail, `PostgreSQL option postgres.${name}`, value, fallback, min, max);
}

function identifier(name: 'schema' | 'tableName', value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    fail(
      `PostgreSQL option postgres.${name} must be a plain identifier (letters, digits, _; at most 48 characters, ` +
        `not starting with a digit), got ${typeof value === 'string' ? quoteRedacted(value) : typeof value}.`,
    );
  }
  return value as string;
}

/** A connection string's part percent-decoded, or as it is when a `%` starts no `%XX`: pg takes it so then. */
function decodedOrAsIs(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Host, port and database of a connection string, for messages: never its user or password. */
function whereOf(connectionString: string): string {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return fail(
      'PostgreSQL option postgres.connectionString is not a valid URL: expected ' +
        'postgres://user:password@host:port/database (the value is not quoted: it may hold a password).',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    fail(
      `PostgreSQL option postgres.connectionString must start with postgres:// or postgresql:// (got ${url.protocol}//).`,
    );
  }
  const database = decodedOrAsIs(url.pathname.replace(/^\//, ''));
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  return `${host}:${url.port || '5432'}${database ? `/${database}` : ''}`;
}

/**
 * Checks every PostgreSQL option and applies the defaults; throws {@link PostgresConfigurationError}
 * naming the option (an unknown name too, with the name it most likely meant).
 *
 * @example
 * const resolved = resolvePostgresOptions({ connectionString: process.env.DATABASE_URL, tableName: 'sessions' });
 * resolvePostgresOptions({ url: 'postgres://db/app' } as PostgresSessionOptions); // throws: did you mean connectionString?
 */
export function resolvePostgresOptions(options: PostgresSessionOptions): ResolvedPostgresOptions {
  const names = new UnknownOptionNames('SessionModule');
  names.check(
    options,
    { path: 'postgres', names: POSTGRES_OPTION_NAMES, aliases: POSTGRES_OPTION_ALIASES },
    'an object such as { connectionString }',
  );
  const unknown = names.message();
  if (unknown !== undefined) fail(unknown);
  const { connectionString, pool } = options;
  if (connectionString !== undefined && pool !== undefined) {
    fail('PostgreSQL options postgres.connectionString and postgres.pool exclude each other: give only one.');
  }
  if (connectionString === undefined && pool === undefined) {
    fail(
      'PostgreSQL options need postgres.connectionString (postgres://user:password@host:port/database) or postgres.pool.',
    );
  }
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString === '')) {
    fail('PostgreSQL option postgres.connectionString must be a non-empty string.');
  }
  if (
    pool !== undefined &&
    (typeof pool !== 'object' || pool === null || typeof pool.connect !== 'function')
  ) {
    fail('PostgreSQL option postgres.pool must be a pg Pool.');
  }
  for (const flag of ['createTable', 'throwOnError', 'preparedStatements'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      fail(
        `PostgreSQL option postgres.${flag} must be true or false (got ${describeOptionValue(options[flag])}).`,
      );
    }
  }
  const ssl = options.ssl;
  if (ssl !== undefined && typeof ssl !== 'boolean' && (typeof ssl !== 'object' || ssl === null)) {
    fail('PostgreSQL option postgres.ssl must be true, false or Node TLS options ({ ca, ... }).');
  }
  if (options.clock !== undefined && typeof options.clock?.now !== 'function') {
    fail('PostgreSQL option postgres.clock must have a now() method.');
  }
  return {
    connectionString,
    pool,
    where: connectionString === undefined ? 'the pool given as postgres.pool' : whereOf(connectionString),
    schema: identifier('schema', options.schema, 'public'),
    tableName: identifier('tableName', options.tableName, 'nest_sessions'),
    createTable: options.createTable ?? true,
    ssl,
    maxConnections: integerOption('maxConnections', options.maxConnections, 10, 1, 10_000),
    connectionTimeout: integerOption(
      'connectionTimeoutInMilliseconds',
      options.connectionTimeoutInMilliseconds,
      5000,
      1,
      600_000,
    ),
    operationTimeout: integerOption(
      'operationTimeoutInMilliseconds',
      options.operationTimeoutInMilliseconds,
      1000,
      1,
      600_000,
    ),
    throwOnError: options.throwOnError ?? true,
    pruneInterval: integerOption(
      'pruneIntervalInMilliseconds',
      options.pruneIntervalInMilliseconds,
      60_000,
      0,
      86_400_000,
    ),
    pruneBatchSize: integerOption('pruneBatchSize', options.pruneBatchSize, 1000, 1, 1_000_000),
    clock: options.clock ?? systemClock,
    preparedStatements: options.preparedStatements ?? true,
  };
}
