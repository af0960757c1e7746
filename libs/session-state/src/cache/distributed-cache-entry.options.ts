/**
 * How long a cache entry lives. With none set the entry does not expire.
 * A sliding expiration never extends an entry past its absolute expiration.
 *
 * @example
 * await cache.set('report', bytes, { slidingExpiration: 5 * 60_000, absoluteExpirationRelativeToNow: 60 * 60_000 });
 */
export interface DistributedCacheEntryOptions {
  /** The entry expires at this moment (must be in the future). */
  absoluteExpiration?: Date | undefined;
  /** The entry expires this many milliseconds from now (> 0). Wins over `absoluteExpiration`. */
  absoluteExpirationRelativeToNow?: number | undefined;
  /** The entry expires after this many milliseconds without a `get` or `refresh` (> 0). */
  slidingExpiration?: number | undefined;
}

/** Expiration resolved to numbers on the caller's clock. */
export interface ResolvedExpiration {
  /** Epoch milliseconds, or undefined for none. */
  readonly absoluteAt?: number;
  readonly slidingMs?: number;
}

function assertPositiveDuration(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(
      `DistributedCacheEntryOptions.${name} must be a positive number of milliseconds (got ${String(value)}). ` +
        `Leave it undefined for no expiration of that kind.`,
    );
  }
}

/** Validates options (zero, negative or past values are errors) and resolves them against `now`. */
export function resolveExpiration(
  options: DistributedCacheEntryOptions | undefined,
  now: number,
): ResolvedExpiration {
  if (!options) return {};
  const { absoluteExpiration, absoluteExpirationRelativeToNow, slidingExpiration } = options;
  let absoluteAt: number | undefined;
  if (absoluteExpirationRelativeToNow !== undefined) {
    assertPositiveDuration('absoluteExpirationRelativeToNow', absoluteExpirationRelativeToNow);
    absoluteAt = now + absoluteExpirationRelativeToNow;
  } else if (absoluteExpiration !== undefined) {
    const at = absoluteExpiration instanceof Date ? absoluteExpiration.getTime() : NaN;
    if (!Number.isFinite(at)) {
      throw new RangeError('DistributedCacheEntryOptions.absoluteExpiration must be a valid Date.');
    }
    if (at <= now) {
      throw new RangeError(
        `DistributedCacheEntryOptions.absoluteExpiration must be in the future (got ${absoluteExpiration.toISOString()}).`,
      );
    }
    absoluteAt = at;
  }
  if (slidingExpiration !== undefined) assertPositiveDuration('slidingExpiration', slidingExpiration);
  return { absoluteAt, slidingMs: slidingExpiration };
}

/** Milliseconds an entry has left after an access at `now`, or Infinity when it never expires. */
export function timeToLive(expiration: ResolvedExpiration, now: number): number {
  const { absoluteAt, slidingMs } = expiration;
  const untilAbsolute = absoluteAt === undefined ? Infinity : absoluteAt - now;
  return slidingMs === undefined ? untilAbsolute : Math.min(slidingMs, untilAbsolute);
}
