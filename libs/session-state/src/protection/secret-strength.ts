/** The shortest secret accepted: 256 bits of key material for HKDF. */
export const MIN_SECRET_BYTES = 32;

/**
 * A conservative estimate of the entropy in a secret: its length times the Shannon entropy of its
 * byte distribution. It rejects the obvious mistakes ('a' * 40, "changemechangeme...") while a
 * base64 or hex encoding of 32 random bytes passes.
 */
export function estimateEntropyBits(bytes: Uint8Array): number {
  const counts = new Map<number, number>();
  for (const byte of bytes) counts.set(byte, (counts.get(byte) ?? 0) + 1);
  let perByte = 0;
  for (const count of counts.values()) {
    const p = count / bytes.length;
    perByte -= p * Math.log2(p);
  }
  return perByte * bytes.length;
}
