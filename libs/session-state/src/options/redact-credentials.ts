/**
 * A value as a startup message may quote it: strings as JSON, with the user and password of any
 * URL in them replaced (`redis://:secret@host` → `redis://***@host`), since options read from the
 * environment often hold a connection string where an object was expected, and Nest logs the error.
 */
export function quoteRedacted(value: string): string {
  return JSON.stringify(value.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1***@'));
}
