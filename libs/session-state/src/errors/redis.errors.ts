import { SessionStateError } from './session-state.error.js';

/**
 * Thrown at startup for Redis options that cannot work, or a Redis that cannot be reached with them;
 * the message names the option.
 *
 * @example
 * SessionModule.forRoot({ redis: { host: 'localhost', url: 'redis://localhost' } });
 * // startup fails: RedisConfigurationError (host/port cannot be combined with url)
 */
export class RedisConfigurationError extends SessionStateError {
  readonly code = 'REDIS_CONFIGURATION';
}

/**
 * A Redis operation failed (after its retries) or timed out.
 *
 * @example
 * try {
 *   await cache.get('report');
 * } catch (error) {
 *   if (error instanceof RedisOperationError) logger.warn(`Redis ${error.operation} failed: ${error.message}`);
 * }
 */
export class RedisOperationError extends SessionStateError {
  readonly code = 'REDIS_OPERATION';

  constructor(
    message: string,
    /** The command or script that failed, e.g. `get` or `session commit`. */
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
