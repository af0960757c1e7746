import { parseCommitReply, parseLoadReply, parseTrackedLoadReply } from './redis-session.replies.js';

/** A reply as the session scripts pack it: length-prefixed names and values. */
function packed(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(
    parts.flatMap((part) => {
      const bytes = Buffer.from(part);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

describe('session script replies (one value per call)', () => {
  it('a load: every field with its bytes, binary and empty values included; nil is no session', () => {
    const reply = packed('count', Buffer.from([0, 0, 0, 7]), 'naïve', '', '\u0000id', 'abc');
    const data = parseLoadReply(reply)!;
    expect([...data.keys()]).toEqual(['count', 'naïve', '\u0000id']);
    expect([...data.get('count')!]).toEqual([0, 0, 0, 7]);
    expect(data.get('naïve')!.length).toBe(0);
    expect(Buffer.from(data.get('\u0000id')!).toString()).toBe('abc');
    expect(parseLoadReply(null)).toBeUndefined();
  });

  it('a near-cache load: the time left before the fields', () => {
    const left = Buffer.alloc(8);
    left.writeDoubleBE(1_199_000);
    const reply = parseTrackedLoadReply(Buffer.concat([left, packed('a', '1')]))!;
    expect(reply.timeLeftMs).toBe(1_199_000);
    expect([...reply.data.keys()]).toEqual(['a']);
    expect(parseTrackedLoadReply(null)).toBeUndefined();
  });

  it("a large session's array shape (HGETALL, then the time left on a near-cache load)", () => {
    const list = [Buffer.from('a'), Buffer.from([1]), Buffer.from('b'), Buffer.alloc(0)];
    expect([...parseLoadReply(list)!.keys()]).toEqual(['a', 'b']);
    expect(parseLoadReply([])).toBeUndefined();
    const tracked = parseTrackedLoadReply([...list, 5_000])!;
    expect(tracked.timeLeftMs).toBe(5_000);
    expect(tracked.data.get('b')!.length).toBe(0);
    expect(() => parseLoadReply(list.slice(0, 3))).toThrow(/cannot read/);
    expect(() => parseTrackedLoadReply(list)).toThrow(/cannot read/);
  });

  it('refuses a truncated or foreign reply with an error that says so, not a wrong session', () => {
    const whole = packed('count', '1');
    expect(() => parseLoadReply(whole.subarray(0, whole.length - 1))).toThrow(/cannot read/);
    expect(() => parseLoadReply(whole.subarray(0, 2))).toThrow(/cannot read/);
    expect(() => parseLoadReply(42 as unknown as Buffer)).toThrow(/cannot read/);
    expect(() => parseTrackedLoadReply(Buffer.alloc(3))).toThrow(/cannot read/);
  });

  it('a commit: status and detail from one integer, also as a string (stringNumbers)', () => {
    const now = 1_764_800_000_123;
    expect(parseCommitReply(now * 8 + 1)).toEqual({ status: 1, detail: now });
    expect(parseCommitReply(String(now * 8 + 4))).toEqual({ status: 4, detail: now });
    expect(parseCommitReply(3 * 8 + 2)).toEqual({ status: 2, detail: 3 });
    expect(() => parseCommitReply([1, now])).toThrow(/cannot read/);
  });
});
