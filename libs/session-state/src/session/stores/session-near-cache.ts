import type { SessionData } from './session-store.interface.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

interface NearEntry {
  /** The stored values; empty when Redis had no session under this key. Never handed out. */
  readonly data: SessionData;
  /** Read from Redis until then; a copy older than this is not trusted (lost invalidations). */
  readonly trustedUntil: number;
  /** When the session's idle timeout was last slid in Redis (by any instance), as its load reported. */
  readonly slidAt: number;
}

/** Returned by {@link SessionNearCache.begin}; -1 when the cache was off. */
export type NearTicket = number;

/**
 * Sessions this instance read recently, keyed by their Redis key, used by RedisSessionStore while Redis
 * invalidations reach this instance (see RedisInvalidations).
 *
 * Coherence: `invalidate` drops a copy when any client (this instance included) wrote the key or Redis dropped it.
 * A load in flight when that happens may carry the older value, so every Redis operation is bracketed by
 * `begin` and `loaded`/`drop`, and a load's result is only kept when no invalidation for its key (and no flush or
 * loss of the invalidation channel) happened in between. A commit or slide keeps nothing.
 */
@HiddenFromLogs()
export class SessionNearCache {
  private readonly entries = new Map<string, NearEntry>();
  /** Redis operations in flight per key. */
  private readonly pending = new Map<string, number>();
  /** Keys invalidated while an operation on them was in flight. */
  private readonly raced = new Set<string>();
  /** Changes whenever copies stop being trustworthy as a whole (flush, channel lost or regained). */
  private epoch = 0;
  private active = false;
  /** Confirms that every invalidation sent before the call has arrived; none: copies are served as held. */
  private barrier: (() => Promise<boolean>) | undefined;

  constructor(
    readonly maxEntries: number,
    readonly maxAge: number,
    /** Longest time a copy is served without sliding the session in Redis. */
    readonly slideEvery: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Number of sessions held. */
  get size(): number {
    return this.entries.size;
  }

  /** True while invalidations reach this instance: only then are copies served and kept. */
  get isActive(): boolean {
    return this.active;
  }

  /**
   * A copy of the session's values, or undefined when Redis must be read: nothing held, held too
   * long (`maxAge`), or due for a slide of the idle timeout. An empty map: no such session in Redis.
   * Without the barrier: an invalidation already sent may not have arrived (see {@link getConfirmed}).
   */
  get(key: string, idleTimeoutMs: number): SessionData | undefined {
    const entry = this.usable(key, idleTimeoutMs);
    return entry && new Map(entry.data);
  }

  private usable(key: string, idleTimeoutMs: number): NearEntry | undefined {
    if (!this.active) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (now >= entry.trustedUntil || now - entry.slidAt >= Math.min(this.slideEvery, idleTimeoutMs)) {
      return undefined;
    }
    return entry;
  }

  /**
   * {@link get}, after the invalidation barrier: the copy only if it is still held once every
   * invalidation Redis sent before this call has been applied. So a commit that completed anywhere
   * before the request arrived is never missed (sequential read-modify-write across instances stays
   * exact). Undefined when Redis must be read, also when the barrier fails.
   */
  async getConfirmed(key: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    if (this.usable(key, idleTimeoutMs) === undefined) return undefined;
    if (this.barrier && !(await this.barrier())) return undefined;
    return this.get(key, idleTimeoutMs);
  }

  /** Set by the invalidation channel (RedisInvalidations). */
  useBarrier(barrier: () => Promise<boolean>): void {
    this.barrier = barrier;
  }

  /** Marks the start of a Redis operation on `key`. */
  begin(key: string): NearTicket {
    if (!this.active) return -1;
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    return this.epoch;
  }

  /**
   * After a load that was begun with `ticket`: keeps what Redis returned (undefined: no session).
   * `slidAgoMs`: how long ago the idle timeout was last slid in Redis (0 unless the load skipped the slide).
   */
  loaded(key: string, ticket: NearTicket, data: SessionData | undefined, slidAgoMs = 0): void {
    if (!this.finish(key, ticket)) {
      this.entries.delete(key);
      return;
    }
    const now = this.now();
    this.entries.delete(key); // re-inserted last: the oldest entries are the ones evicted
    if (this.entries.size >= this.maxEntries) this.evictOldest();
    this.entries.set(key, {
      data: data ? new Map(data) : (new Map() as SessionData),
      trustedUntil: now + this.maxAge,
      slidAt: now - slidAgoMs,
    });
  }

  /**
   * After an operation begun with `ticket` whose result is not kept: it failed or timed out, or it wrote the session
   * (a commit, a slide), which Redis invalidates for this instance too. The copy is dropped.
   */
  drop(key: string, ticket: NearTicket): void {
    this.finish(key, ticket);
    this.entries.delete(key);
  }

  /** A client (this instance included) changed `key`, or Redis dropped it (a Redis invalidation). */
  invalidate(key: string): void {
    this.entries.delete(key);
    if (this.pending.has(key)) this.raced.add(key);
  }

  /** Every copy is dropped (FLUSHALL, FLUSHDB, or Redis asked so). */
  flush(): void {
    this.epoch++;
    this.entries.clear();
  }

  /** Invalidations reach this instance from now on. */
  activate(): void {
    this.flush();
    this.active = true;
  }

  /** Invalidations may be missed from now on: nothing is served or kept until {@link activate}. */
  deactivate(): void {
    this.active = false;
    this.flush();
  }

  private finish(key: string, ticket: NearTicket): boolean {
    if (ticket < 0) return false;
    const left = this.pending.get(key)! - 1;
    const clean = ticket === this.epoch && !this.raced.has(key);
    if (left === 0) {
      this.pending.delete(key);
      this.raced.delete(key);
    } else {
      this.pending.set(key, left);
    }
    return clean;
  }

  private evictOldest(): void {
    for (const key of this.entries.keys()) {
      this.entries.delete(key);
      return;
    }
  }
}
