import { copyOfError } from '../../logging/error-copy.js';

/**
 * What of an ioredis error may be kept as a `cause` ({@link copyOfError}): its message and `code`, not the
 * `command` ioredis attaches to an error reply (its arguments are session keys, session values, user ids, and for
 * AUTH the password), nor a cluster error's `lastNodeError`.
 */
export function withoutCommand(error: unknown): unknown {
  return copyOfError(error, ['code']);
}
