import type { Clock } from '../clock.js';
import { timeToLive, type ResolvedExpiration } from '../distributed-cache-entry.options.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

interface Entry<V> {
  value: V;
  expiration: ResolvedExpiration;
  expiresAt: number;
  size: number;
}

/** Settings of a {@link MemoryEntryTable}. */
export interface MemoryEntryTableOptions<V> {
  clock: Clock;
  /** Upper bound of the summed entry sizes; least recently used entries are evicted beyond it. */
  sizeLimit?: number;
  /** Upper bound of the number of entries; least recently used entries are evicted beyond it. */
  maxCount?: number;
  sizeOf: (value: V) => number;
  /** Called for every entry evicted to stay within a bound (not for expiry or deletes). */
  onEvict?: (bound: 'sizeLimit' | 'maxCount') => void;
}

/**
 * A bound of a table ({@link MemoryEntryTableOptions.sizeLimit}, `maxCount`) from an option: `value`, else
 * `fallback`; a positive integer, or Infinity for none (undefined).
 * @throws RangeError with the message `invalid()` gives, for any other value.
 */
export function resolveBound(
  value: number | undefined,
  fallback: number,
  invalid: () => string,
): number | undefined {
  const resolved = value ?? fallback;
  if (resolved === Infinity) return undefined;
  if (!Number.isInteger(resolved) || resolved <= 0) throw new RangeError(invalid());
  return resolved;
}

/** Entries examined for expiry per new key: enough to keep up, far from a full scan. */
const SWEEP_STEP = 8;

/**
 * The storage behind the memory cache and the memory session store: entries with absolute and
 * sliding expiry on an injectable clock, LRU eviction under a size or count limit, and an incremental
 * sweep.
 *
 * Expired entries are dropped when touched, and a cursor walks the table round and round examining a
 * few entries per new key and one per read, update or delete: dead entries disappear at a rate
 * proportional to the traffic, read-only traffic included, without any call scanning everything.
 * Under a bound a read moves its entry to the end of the `Map` (the LRU order), right behind the
 * cursor when the cursor is there: meeting the entry it just moved, the cursor starts again from the
 * front, where the least recently used entries are (else it would follow the read entries forever);
 * so it does after as many steps as the table holds entries, since known keys read in a fixed cycle
 * move ahead of it in step with it and it may never meet the one just moved (a probe).
 *
 * The cursor moves on every operation for a second reason: a `Map` iterator keeps alive every
 * backing table the `Map` had since the iterator last moved (V8 chains each replaced table to the
 * next), and the LRU reordering (`delete` + `set` per read) replaces it every few thousand reads. A
 * cursor left idle while only known keys were read held a growing chain (a probe: ~120 B per
 * request, freed only by the next new key).
 */
@HiddenFromLogs()
export class MemoryEntryTable<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private cursor: Iterator<[string, Entry<V>]> | undefined;
  /** Entries the cursor examined since it last started from the front. */
  private lap = 0;
  private totalSize = 0;
  /** A bound is set: the Map's order is kept as the LRU order (reads move an entry to the end). */
  private readonly bounded: boolean;

  constructor(private readonly options: MemoryEntryTableOptions<V>) {
    this.bounded = options.sizeLimit !== undefined || options.maxCount !== undefined;
  }

  get count(): number {
    return this.entries.size;
  }

  get size(): number {
    return this.totalSize;
  }

  /**
   * The live value, sliding its expiry (by `slidingMs` when given, which then becomes the entry's
   * sliding window); undefined when missing or expired.
   */
  get(key: string, slidingMs?: number): V | undefined {
    const now = this.options.clock.now();
    const entry = this.live(key, now);
    if (!entry) return undefined;
    if (slidingMs !== undefined && entry.expiration.slidingMs !== slidingMs) {
      entry.expiration = { ...entry.expiration, slidingMs };
    }
    this.touch(key, entry, now);
    this.stepPast(key, now);
    return entry.value;
  }

  /** The live value without sliding or reordering it. */
  peek(key: string): V | undefined {
    return this.live(key, this.options.clock.now())?.value;
  }

  /** The live value and when it expires, without sliding or reordering it. */
  inspect(key: string): { value: V; expiresAt: number } | undefined {
    const entry = this.live(key, this.options.clock.now());
    return entry && { value: entry.value, expiresAt: entry.expiresAt };
  }

  /** Slides the expiry; false when there is no live entry. */
  refresh(key: string): boolean {
    const now = this.options.clock.now();
    const entry = this.live(key, now);
    if (!entry) return false;
    this.touch(key, entry, now);
    this.stepPast(key, now);
    return true;
  }

  /** The size `key`'s entry counts for (what `sizeOf` gave when it was set); undefined without one. */
  sizeOfEntry(key: string): number | undefined {
    return this.entries.get(key)?.size;
  }

  /** The bound on the summed entry sizes; undefined: none. */
  get sizeLimit(): number | undefined {
    return this.options.sizeLimit;
  }

  /** Whether one entry of `size` fits the table at all: beyond `sizeLimit` it would evict everything, itself too. */
  private fits(size: number): boolean {
    return this.options.sizeLimit === undefined || size <= this.options.sizeLimit;
  }

  /**
   * Stores `value` under `key`, evicting the least recently used entries beyond a bound. False, and nothing
   * changed, when the value alone is larger than `sizeLimit` (see {@link fits}).
   */
  set(key: string, value: V, expiration: ResolvedExpiration): boolean {
    const now = this.options.clock.now();
    const size = this.options.sizeOf(value);
    if (!this.fits(size)) return false;
    const expiresAt = now + timeToLive(expiration, now);
    const entry = this.entries.get(key);
    if (entry) {
      // Updated in place: the table does not grow, so no sweep step is owed (they pace new keys).
      this.totalSize += size - entry.size;
      entry.value = value;
      entry.expiration = expiration;
      entry.expiresAt = expiresAt;
      entry.size = size;
      if (this.bounded) {
        this.entries.delete(key); // most recently used: to the end of the LRU order
        this.entries.set(key, entry);
      }
      this.stepPast(key, now);
    } else {
      this.entries.set(key, { value, expiration, expiresAt, size });
      this.totalSize += size;
      this.sweepStep(now, SWEEP_STEP);
    }
    this.evictOverLimit(key);
    return true;
  }

  delete(key: string): boolean {
    const removed = this.remove(key);
    this.sweepStep(this.options.clock.now(), 1);
    return removed;
  }

  private remove(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.totalSize -= entry.size;
    return true;
  }

  /** Drops every expired entry (a full scan: for tests and explicit maintenance only). */
  sweepAll(): number {
    const now = this.options.clock.now();
    let removed = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) removed += Number(this.remove(key));
    }
    return removed;
  }

  private live(key: string, now: number): Entry<V> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.remove(key);
      this.sweepStep(now, 1); // the cursor moves on every change of the table (see the class)
      return undefined;
    }
    return entry;
  }

  private touch(key: string, entry: Entry<V>, now: number): void {
    if (entry.expiration.slidingMs !== undefined) entry.expiresAt = now + timeToLive(entry.expiration, now);
    if (this.bounded) {
      // Map order is the LRU order: move the entry to the end.
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
  }

  /** One sweep step after `key` was read or updated (under a bound that moved it to the end: see the class). */
  private stepPast(key: string, now: number): void {
    this.sweepStep(now, 1, this.bounded ? key : undefined);
  }

  /** Examines `steps` entries at the cursor; `moved`: the key just moved to the end (see the class). */
  private sweepStep(now: number, steps: number, moved?: string): void {
    for (let i = 0; i < steps; i++) {
      if (this.cursor === undefined) {
        this.cursor = this.entries.entries();
        this.lap = 0;
      }
      const next = this.cursor.next();
      if (next.done || ++this.lap > this.entries.size) {
        this.cursor = undefined;
        return;
      }
      const [key, entry] = next.value;
      if (key === moved) {
        this.cursor = undefined;
        return;
      }
      if (entry.expiresAt <= now) this.remove(key);
    }
  }

  private evictOverLimit(justWritten: string): void {
    const { sizeLimit, maxCount } = this.options;
    if (maxCount !== undefined && this.entries.size > maxCount) {
      // Only a new key grows the count, and it is the newest: the oldest go first.
      for (const key of this.entries.keys()) {
        if (this.entries.size <= maxCount) break;
        this.evict(key, 'maxCount');
      }
    }
    if (sizeLimit === undefined) return;
    // The entry just written fits on its own (see set): others make room for it.
    for (const key of this.entries.keys()) {
      if (this.totalSize <= sizeLimit) return;
      if (key !== justWritten) this.evict(key, 'sizeLimit');
    }
  }

  private evict(key: string, bound: 'sizeLimit' | 'maxCount'): void {
    const entry = this.entries.get(key)!;
    this.remove(key);
    // An expired entry is not a live one pushed out: no report.
    if (entry.expiresAt > this.options.clock.now()) this.options.onEvict?.(bound);
  }
}
