/** Thrown at startup for Redis options that cannot work; the message names the option. */
export class RedisConfigurationError extends Error {
  override readonly name = 'RedisConfigurationError';
}

/** A Redis operation failed (after its retries) or timed out. */
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
