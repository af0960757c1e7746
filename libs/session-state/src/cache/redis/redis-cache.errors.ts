/**
 * Thrown at startup for Redis options that cannot work; the message names the option.
 *
 * @example
 * SessionModule.forRoot({ redis: { host: 'localhost', url: 'redis://localhost' } });
 * // startup fails: RedisConfigurationError (host/port cannot be combined with url)
 */
export class RedisConfigurationError extends Error {
  override readonly name = 'RedisConfigurationError';
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
export class RedisOperationError extends Error {
  override readonly name = 'RedisOperationError';

  constructor(
    message: string,
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
