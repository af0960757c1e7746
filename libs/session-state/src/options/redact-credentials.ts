/** A connection string's scheme (`redis://`), which is kept. */
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * A message with the user and password of every connection string in it replaced: everything before the
 * last `@` of a word, after its scheme if it has one (`redis://:secret@host` → `redis://***@host`,
 * `user:secret@host:6379` → `***@host:6379`), quotes and other punctuation in the password included. Drivers
 * quote connection strings in their errors, and Nest logs them. A password with a space in it is cut at the
 * space; {@link quoteRedacted} masks a whole value.
 */
export function redactCredentials(text: string): string {
  return text.replace(/(^|[\s"'(=,[])([a-z][a-z0-9+.-]*:\/\/)?(?![\s"'(=,[])\S+@/gi, '$1$2***@');
}

/**
 * An option's value as a startup message may quote it: as JSON, with everything before its last `@` (after
 * its scheme) masked. Options read from the environment often hold a connection string where an object or
 * a `host:port` was expected.
 */
export function quoteRedacted(value: string): string {
  const at = value.lastIndexOf('@');
  if (at < 0) return JSON.stringify(value);
  return JSON.stringify(`${SCHEME.exec(value)?.[0] ?? ''}***${value.slice(at)}`);
}
