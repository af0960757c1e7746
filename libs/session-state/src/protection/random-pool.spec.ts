import { RANDOM_POOL_BYTES, randomBase64url, randomBuffer } from './random-pool.js';

/** Draws `count` values of `byteCount` bytes, alternating text and Buffer draws, as bytes. */
function draw(count: number, byteCount: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    i % 2 ? randomBuffer(byteCount) : Buffer.from(randomBase64url(byteCount), 'base64url'),
  );
}

describe('random pool', () => {
  it('hands out every byte once, across refills: no two draws share a 16-byte value', () => {
    // Ten pools' worth: a draw that reused bytes (an offset not advanced, a refill skipped) repeats a value.
    const values = draw((RANDOM_POOL_BYTES / 16) * 10, 16);
    expect(values.every((v) => v.length === 16)).toBe(true);
    expect(new Set(values.map((v) => v.toString('hex'))).size).toBe(values.length);
  });

  it('draws that do not divide the pool evenly still get fresh bytes of the length asked', () => {
    const values = draw(2000, 24); // 4096 is not a multiple of 24: the tail of each pool is skipped
    expect(values.every((v) => v.length === 24)).toBe(true);
    expect(new Set(values.map((v) => v.toString('hex'))).size).toBe(2000);
    expect(randomBase64url(24)).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('fills from the CSPRNG: every bit position is set in about half of 4,000 draws', () => {
    const values = draw(4000, 12);
    for (let bit = 0; bit < 96; bit++) {
      const ones = values.reduce((n, v) => n + ((v[bit >> 3] >> (7 - (bit & 7))) & 1), 0);
      // Binomial(4000, 0.5): mean 2000, standard deviation ~32; a stuck or unfilled bit is far outside.
      expect(ones).toBeGreaterThan(1750);
      expect(ones).toBeLessThan(2250);
    }
  });

  it('a Buffer draw is a copy: refilling the pool does not change it', () => {
    const iv = randomBuffer(12);
    const copy = Buffer.from(iv);
    draw(RANDOM_POOL_BYTES / 8, 16); // two refills
    expect(iv.equals(copy)).toBe(true);
  });

  it('rejects a byte count that is not an integer from 1 to the pool size, naming the range', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, RANDOM_POOL_BYTES + 1])
      expect(() => randomBase64url(bad)).toThrow(`an integer from 1 to ${RANDOM_POOL_BYTES} (got ${bad})`);
    expect(randomBuffer(RANDOM_POOL_BYTES)).toHaveLength(RANDOM_POOL_BYTES);
  });
});
