/**
 * The text with the user and password of every connection string in it replaced: everything before the
 * last `@` of a word, after its scheme if it has one (`redis://:secret@host` → `redis://***@host`,
 * `user:secret@host:6379` → `***@host:6379`, also when the password holds `/` or `:`). Options read from
 * the environment often hold a connection string where an object or a `host:port` was expected, and
 * drivers quote them in their errors; Nest logs both.
 */
export function redactCredentials(text: string): string {
  return text.replace(/(^|[\s"'(=,[])([a-z][a-z0-9+.-]*:\/\/)?[^\s"']*@/gi, '$1$2***@');
}

/** A value as a startup message may quote it: strings as JSON, without credentials ({@link redactCredentials}). */
export function quoteRedacted(value: string): string {
  return JSON.stringify(redactCredentials(value));
}
