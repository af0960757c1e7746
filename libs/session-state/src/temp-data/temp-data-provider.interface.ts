/**
 * Where one request's TempData comes from and goes to: the encrypted cookie (default) or the
 * session. Created per request; `load` is synchronous because TempData loads lazily on first use.
 */
export interface TempDataProvider {
  load(): ReadonlyMap<string, unknown>;
  save(values: ReadonlyMap<string, unknown>, loaded: ReadonlyMap<string, unknown>): void;
  /** Throws when `values` (what would be saved after `set(key)`) could not be stored. */
  checkSize?(values: ReadonlyMap<string, unknown>, key: string): void;
}

/** True when `next` holds exactly the entries of `previous` (same values by identity). */
export function unchanged(
  next: ReadonlyMap<string, unknown>,
  previous: ReadonlyMap<string, unknown>,
): boolean {
  if (next.size !== previous.size) return false;
  for (const [key, value] of next) if (!previous.has(key) || previous.get(key) !== value) return false;
  return true;
}
