import { encodeTempDataValue, tempDataSnapshot } from './temp-data.value-codec.js';

const encoder = new TextEncoder();
const byteLength = (text: string): number => encoder.encode(text).length;

/**
 * Supplies the TempData a request arrived with. Called lazily, at most once per dictionary, on the first
 * access that needs the data; never called for a request that does not use TempData.
 */
export type TempDataLoader = () => ReadonlyMap<string, unknown>;

/** Checks a request's TempData applies to its dictionary (the request's lifecycle provides them). */
export interface TempDataGuard {
  /** Before `set`, `remove`, `clear` and `keep`: throws when the change could no longer be saved. */
  beforeChange?(): void;
  /** After `set(key, ...)` with what would be saved now: throws when it could not be stored (the set is undone). */
  checkSize?(values: ReadonlyMap<string, unknown>, key: string): void;
  /**
   * True once what was loaded went away with its store (the session provider's session was abandoned or
   * cleared): only values set in this request are saved then.
   */
  loadedDiscarded?(): boolean;
}

interface TempDataEntry {
  /** The key as it was first stored; lookups ignore case. */
  readonly key: string;
  value: unknown;
  /** A copy set in this request: its encoding at `set`, to tell whether it was changed in place since. */
  encodedAtSet?: string | undefined;
}

/**
 * Values that live until they are read, with ASP.NET Core's TempDataDictionary semantics:
 *
 * - Loading is lazy: the loader runs on the first access of any kind, once.
 * - {@link get} (and enumerating with {@link entries}) marks a value for deletion at the end of the request.
 * - {@link peek} and {@link has} read without marking.
 * - {@link keep} retains every value present; `keep(key)` retains one.
 * - A value set in this request is kept until it is read; a value set and read in the same request is not.
 * - Keys are case-insensitive (ordinal, like .NET's `OrdinalIgnoreCase`); {@link keys} reports the casing
 *   a key was first stored with.
 *
 * At the end of the request a provider saves {@link toSave}, and only when {@link isLoaded} is true:
 * a dictionary that was never loaded cannot have changed.
 *
 * @example
 * const tempData = new TempDataDictionary(() => loadFromCookie(req));
 * tempData.set('Message', 'Customer Ada added');
 * // next request
 * tempData.get<string>('message'); // 'Customer Ada added', gone after this request
 */
export class TempDataDictionary implements Iterable<[string, unknown]> {
  private readonly data = new Map<string, TempDataEntry>();
  /** Keys saved at the end of the request unless read: the loaded ones and those set here. */
  private readonly unread = new Set<string>();
  /** Keys saved even though they were read. */
  private readonly retained = new Set<string>();
  /** Keys set in this request (and not removed since). */
  private readonly setHere = new Set<string>();
  private loaded = false;
  private touched = false;
  private keepAllOnLoad = false;
  private loadFailure: { error: unknown } | undefined;

  /**
   * @param loader returns the TempData of the incoming request; see {@link TempDataLoader}.
   * @param guard the request's checks on changes (none by default).
   */
  constructor(
    private readonly loader: TempDataLoader,
    private readonly guard: TempDataGuard = {},
  ) {}

  /** True once the loader has run. Providers save only then. */
  get isLoaded(): boolean {
    return this.loaded;
  }

  /** True once any member of this dictionary was used (even `keep()`, which does not need to load). */
  get isTouched(): boolean {
    return this.touched;
  }

  /** Number of values, read or not. Does not mark anything as read. */
  get size(): number {
    this.access();
    return this.data.size;
  }

  /**
   * Returns the value and marks it for deletion at the end of the request (unless kept).
   * `T` is not checked at runtime; values come back with the types they were stored with.
   */
  get<T = unknown>(key: string): T | undefined {
    this.access();
    const id = foldKey(key);
    this.unread.delete(id);
    return this.data.get(id)?.value as T | undefined;
  }

  /** Returns the value without marking it for deletion. */
  peek<T = unknown>(key: string): T | undefined {
    this.access();
    return this.data.get(foldKey(key))?.value as T | undefined;
  }

  /**
   * Stores a value until it is read (in this or a later request). `undefined` removes the key. An object or array
   * is copied: changing it after `set` changes nothing stored (set it again), and `get` returns the copy.
   *
   * @throws TypeError naming the key when the value cannot survive the round trip (see `assertTempDataValue`);
   * the dictionary is left unchanged.
   */
  set(key: string, value: unknown): void {
    assertKey(key);
    if (value === undefined) {
      this.remove(key);
      return;
    }
    const snapshot = tempDataSnapshot(key, value);
    this.guard.beforeChange?.();
    this.access();
    const id = foldKey(key);
    const existing = this.data.get(id);
    const before = existing
      ? { value: existing.value, encodedAtSet: existing.encodedAtSet, unread: this.unread.has(id) }
      : undefined;
    const wasSetHere = this.setHere.has(id);
    if (existing) {
      existing.value = snapshot.value;
      existing.encodedAtSet = snapshot.encoded;
    } else this.data.set(id, { key, value: snapshot.value, encodedAtSet: snapshot.encoded });
    this.unread.add(id);
    this.setHere.add(id);
    if (!this.guard.checkSize) return;
    try {
      this.guard.checkSize(this.toSave(), key);
    } catch (error) {
      if (!before) this.data.delete(id);
      else {
        existing!.value = before.value;
        existing!.encodedAtSet = before.encodedAtSet;
        if (!before.unread) this.unread.delete(id);
      }
      if (!wasSetHere) this.setHere.delete(id);
      throw error;
    }
  }

  /** Whether the key is present. Does not mark it as read. */
  has(key: string): boolean {
    this.access();
    return this.data.has(foldKey(key));
  }

  /** Removes the key now; returns whether it was present. */
  remove(key: string): boolean {
    this.guard.beforeChange?.();
    this.access();
    const id = foldKey(key);
    this.unread.delete(id);
    this.retained.delete(id);
    this.setHere.delete(id);
    return this.data.delete(id);
  }

  /** Removes every value. */
  clear(): void {
    this.guard.beforeChange?.();
    this.access();
    this.data.clear();
    this.unread.clear();
    this.retained.clear();
    this.setHere.clear();
  }

  /**
   * `keep()` retains every value present now, read or not; `keep(key)` retains that one.
   * Neither loads the data: retaining needs only the key, and an unloaded dictionary is not saved.
   */
  keep(key?: string): void {
    this.guard.beforeChange?.();
    this.touched = true;
    if (key !== undefined) {
      this.retained.add(foldKey(key));
    } else if (this.loaded) {
      for (const id of this.data.keys()) this.retained.add(id);
    } else {
      this.keepAllOnLoad = true;
    }
  }

  /** The keys, in the casing each was first stored with. Does not mark anything as read. */
  keys(): string[] {
    this.access();
    return Array.from(this.data.values(), (entry) => entry.key);
  }

  /**
   * Enumerates `[key, value]` pairs. As in ASP.NET, every pair yielded counts as read and is marked for
   * deletion; use {@link keys} with {@link peek} to look without consuming.
   */
  entries(): IterableIterator<[string, unknown]> {
    this.access();
    return this.readEach();
  }

  /** Same as {@link entries}: enumerating marks every yielded value as read. */
  [Symbol.iterator](): IterableIterator<[string, unknown]> {
    return this.entries();
  }

  /**
   * The values to persist at the end of the request: those not read, those set in this request and not
   * read, and those kept; only those set in this request once what was loaded went away with its store. Does not change the dictionary. Loads the data if needed (so nothing is lost),
   * which is why providers should check {@link isLoaded} first and skip saving when it is false.
   */
  toSave(): Map<string, unknown> {
    this.load();
    const result = new Map<string, unknown>();
    const discarded = this.guard.loadedDiscarded?.() === true;
    for (const [id, entry] of this.data) {
      if (discarded && !this.setHere.has(id)) continue;
      if (this.unread.has(id) || this.retained.has(id)) result.set(entry.key, entry.value);
    }
    return result;
  }

  /**
   * @internal What {@link toSave} holds without the values read in this request (kept by `keep()` or a
   * redirect): the values that must survive when not everything can be saved.
   */
  toSaveUnread(): Map<string, unknown> {
    return this.toSaveWhere((id) => this.unread.has(id));
  }

  /**
   * @internal The values set in this request and not read since: what must survive when even the unread values
   * cannot be saved (a stored value changed in place past the limit after the sets were accepted).
   */
  toSaveSetHere(): Map<string, unknown> {
    return this.toSaveWhere((id) => this.unread.has(id) && this.setHere.has(id));
  }

  /**
   * @internal The values set in this request that grew in place since (a `peek()` result pushed to), with how many
   * bytes of encoding each gained, largest first: sizes no `set` accepted, to go first when not everything can be
   * saved. One that no longer encodes counts as grown without bound.
   */
  grownSinceSet(): [key: string, grownBy: number][] {
    const grown: [string, number][] = [];
    for (const [id, entry] of this.data) {
      if (entry.encodedAtSet === undefined || !this.setHere.has(id) || !this.unread.has(id)) continue;
      let growth = Number.POSITIVE_INFINITY;
      try {
        growth = byteLength(encodeTempDataValue(entry.key, entry.value)) - byteLength(entry.encodedAtSet);
      } catch {
        // changed into a value that does not encode at all
      }
      if (growth > 0) grown.push([entry.key, growth]);
    }
    return grown.sort((a, b) => b[1] - a[1]);
  }

  private toSaveWhere(keeps: (id: string) => boolean): Map<string, unknown> {
    this.load();
    const result = new Map<string, unknown>();
    const discarded = this.guard.loadedDiscarded?.() === true;
    for (const [id, entry] of this.data) {
      if (discarded && !this.setHere.has(id)) continue;
      if (keeps(id)) result.set(entry.key, entry.value);
    }
    return result;
  }

  private *readEach(): Generator<[string, unknown]> {
    for (const [id, entry] of this.data) {
      this.unread.delete(id);
      yield [entry.key, entry.value];
    }
  }

  private access(): void {
    this.touched = true;
    this.load();
  }

  private load(): void {
    if (this.loaded) return;
    // A failed load is not retried: the loader runs at most once, and every later access reports the failure.
    if (this.loadFailure) throw this.loadFailure.error;
    let incoming: ReadonlyMap<string, unknown>;
    try {
      incoming = this.loader();
    } catch (error) {
      this.loadFailure = { error };
      throw error;
    }
    for (const [key, value] of incoming) {
      if (value === undefined) continue;
      const id = foldKey(key);
      const existing = this.data.get(id);
      if (existing) existing.value = value;
      else this.data.set(id, { key, value });
      this.unread.add(id);
    }
    if (this.keepAllOnLoad) for (const id of this.data.keys()) this.retained.add(id);
    this.loaded = true;
  }
}

function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new TypeError(`TempData keys must be strings, got ${typeof key}. Use a string key.`);
  }
}

/**
 * Case folding like .NET's OrdinalIgnoreCase: each character is upper-cased on its own, without locale
 * rules, and a character whose upper case is longer (ß → SS) stays as it is, so "ß" and "SS" differ.
 */
function foldKey(key: string): string {
  let folded = '';
  for (const char of key) {
    const upper = char.toUpperCase();
    folded += upper.length === char.length ? upper : char;
  }
  return folded;
}
