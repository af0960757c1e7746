/**
 * Where one request's TempData comes from and goes to: the encrypted cookie (default) or the
 * session. Created per request; `load` is synchronous because TempData loads lazily on first use.
 */
export interface TempDataProvider {
  load(): ReadonlyMap<string, unknown>;
  /**
   * Writes `values` (nothing when they equal `loaded`). A refusal, instead of a write, when they could not
   * be carried (the cookie provider over `tempData.maxCookieBytes`): nothing is written then.
   */
  save(
    values: ReadonlyMap<string, unknown>,
    loaded: ReadonlyMap<string, unknown>,
  ): TempDataSaveRefusal | void;
  /** Throws when `values` (what would be saved after `set(key)`) could not be stored. */
  checkSize?(values: ReadonlyMap<string, unknown>, key: string): void;
  /** True once what `load` returned went away with its store (a session abandoned or cleared since). */
  loadedDiscarded?(): boolean;
}

/** Why a provider wrote nothing: `values` would pass what it can carry. */
export interface TempDataSaveRefusal {
  /** What would pass which limit, for the log (`the TempData cookie would be 9000 bytes, over ...`). */
  readonly reason: string;
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
