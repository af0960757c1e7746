import { redactCredentials } from '../options/redact-credentials.js';

/**
 * A driver's error as the library keeps it for the `cause` of its own errors, which apps log: its class name,
 * message (credentials masked), stack frames and the named `fields`, nothing else the driver attached (what it
 * sent, what the server quoted back). Not an `Error`: returned as it is.
 */
export function copyOfError(error: unknown, fields: readonly string[]): unknown {
  if (!(error instanceof Error)) return error;
  const message = redactCredentials(error.message);
  const copy = new Error(message);
  copy.name = error.name;
  const frames = error.stack?.indexOf('\n    at ') ?? -1;
  copy.stack = `${error.name}: ${message}${frames >= 0 ? error.stack!.slice(frames) : ''}`;
  const source = error as unknown as Record<string, unknown>;
  const target = copy as unknown as Record<string, unknown>;
  for (const field of fields) if (source[field] !== undefined) target[field] = source[field];
  return copy;
}
