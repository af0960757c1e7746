import { randomFillSync } from 'node:crypto';

/** CSPRNG bytes fetched at a time. */
export const RANDOM_POOL_BYTES = 4096;

const pool = Buffer.allocUnsafeSlow(RANDOM_POOL_BYTES);
/** Bytes of {@link pool} handed out (or never filled): the next draw starts here. */
let used = RANDOM_POOL_BYTES;

/**
 * Reserves `byteCount` fresh bytes of the pool, refilling it from the CSPRNG when too few are left,
 * and returns where they start. Every byte is handed out once: a refill overwrites the whole pool.
 */
function reserve(byteCount: number): number {
  if (!Number.isInteger(byteCount) || byteCount < 1 || byteCount > RANDOM_POOL_BYTES)
    throw new RangeError(
      `random byte count must be an integer from 1 to ${RANDOM_POOL_BYTES} (got ${byteCount})`,
    );
  if (used + byteCount > RANDOM_POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const at = used;
  used += byteCount;
  return at;
}

/** Overwrites bytes handed out, so the pool never keeps a key, id or token it drew. */
function wipe(at: number, byteCount: number): void {
  pool.fill(0, at, at + byteCount);
}

/**
 * `byteCount` bytes of Node's CSPRNG (`crypto.randomFillSync`) as base64url text: session keys, session
 * ids, lock tokens. The bytes are fetched 4 KiB at a time, as Node's own `randomUUID` does, because one
 * `crypto.randomBytes` call costs ~10 µs of per-call setup on Node 20 (12 µs per 24-byte key, against
 * 0.6 µs from the pool), more than the rest of a new session's bookkeeping.
 */
export function randomBase64url(byteCount: number): string {
  const at = reserve(byteCount);
  const text = pool.toString('base64url', at, at + byteCount);
  wipe(at, byteCount);
  return text;
}

/** `byteCount` bytes of the CSPRNG, as {@link randomBase64url}, in a Buffer of their own (AES-GCM IVs). */
export function randomBuffer(byteCount: number): Buffer {
  const at = reserve(byteCount);
  const bytes = Buffer.from(pool.subarray(at, at + byteCount));
  wipe(at, byteCount);
  return bytes;
}
