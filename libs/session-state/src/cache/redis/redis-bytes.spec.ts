import { commandBytes } from './redis-bytes.js';

describe('commandBytes (Redis command arguments from session values)', () => {
  it('passes a Buffer through as it is', () => {
    const buffer = Buffer.from([1, 2, 3]);
    expect(commandBytes(buffer)).toBe(buffer);
  });

  it('copies a small Uint8Array: the same bytes, and later changes to the value do not reach it', () => {
    const value = Uint8Array.of(0, 0, 0, 7);
    const out = commandBytes(value);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect([...out]).toEqual([0, 0, 0, 7]);
    value[3] = 8;
    expect(out[3]).toBe(7);
  });

  it('views a large Uint8Array, also one that starts inside its ArrayBuffer', () => {
    const backing = new Uint8Array(300).map((_, i) => i % 256);
    const value = backing.subarray(10, 210);
    const out = commandBytes(value);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.length).toBe(200);
    expect(out.equals(Buffer.from(backing.slice(10, 210)))).toBe(true);
    expect(out.buffer).toBe(backing.buffer);
  });

  it('keeps the exact bytes of a small value that is a view into a larger array', () => {
    const backing = Uint8Array.of(9, 9, 1, 2, 3, 9);
    expect([...commandBytes(backing.subarray(2, 5))]).toEqual([1, 2, 3]);
  });
});
