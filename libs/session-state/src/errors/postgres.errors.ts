import { SessionStateError } from './session-state.error.js';

/**
 * Thrown at startup for PostgreSQL options that cannot work, or a database that cannot be used with
 * them (unreachable, credentials refused, table missing, permission missing); the message names the
 * option and never quotes a password.
 *
 * @example
 * SessionModule.forRoot({ postgres: { connectionString: 'mysql://db/app' } });
 * // startup fails: PostgresConfigurationError (postgres.connectionString must start with postgres://)
 */
export class PostgresConfigurationError extends SessionStateError {
  readonly code = 'POSTGRES_CONFIGURATION';
}

/**
 * A PostgreSQL session operation failed or timed out (`operationTimeoutInMilliseconds`).
 *
 * @example
 * catch (error) {
 *   if (error instanceof SessionUnavailableError && error.cause instanceof PostgresOperationError) {
 *     logger.warn(`PostgreSQL ${error.cause.operation} failed: ${error.cause.message}`);
 *   }
 * }
 */
export class PostgresOperationError extends SessionStateError {
  readonly code = 'POSTGRES_OPERATION';

  constructor(
    message: string,
    /** What failed, e.g. `SESSION LOAD` or `SESSION COMMIT`. */
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
