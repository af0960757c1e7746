import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Expose, Type } from 'class-transformer';
import { SessionNotLoadedError } from '../errors/session.errors.js';
import { DistributedSession, type SessionHost } from './session.js';

class Address {
  @Expose() city!: string;
}
class User {
  @Expose() name!: string;
  @Type(() => Address) address!: Address;
  greet(): string {
    return `Hello ${this.name} from ${this.address.city}`;
  }
}

function loadedSession(limits = { maxValueBytes: 1024, maxSessionBytes: 4096, maxKeys: 10 }) {
  const host: SessionHost = {
    load: () => Promise.resolve(),
    commit: () => Promise.resolve(),
    beforeEstablish: jest.fn(),
    beforeChange: jest.fn(),
    regenerate: jest.fn(),
    abandon: jest.fn(),
    limits,
  };
  const session = new DistributedSession(host);
  session.attach(undefined, true);
  return { session, host };
}

describe('DistributedSession', () => {
  it('throws a clear error when used before it is loaded', () => {
    const session = new DistributedSession({} as SessionHost);
    expect(() => session.getString('x')).toThrow(SessionNotLoadedError);
    expect(() => session.keys).toThrow(/await session.load\(\)/);
  });

  it('bytes, strings and Int32 round-trip; Int32 is 4 bytes big-endian like ASP.NET', () => {
    const { session } = loadedSession();
    session.setBytes('b', Uint8Array.of(0, 255, 10));
    session.setString('s', 'Grüße ✓');
    session.setInt32('i', -123456);
    expect([...session.getBytes('b')!]).toEqual([0, 255, 10]);
    expect(session.getString('s')).toBe('Grüße ✓');
    expect(session.getInt32('i')).toBe(-123456);
    session.setInt32('one', 1);
    expect([...session.getBytes('one')!]).toEqual([0, 0, 0, 1]);
    for (const [value, bytes] of [
      [-1, [255, 255, 255, 255]],
      [-2147483648, [128, 0, 0, 0]],
      [2147483647, [127, 255, 255, 255]],
      [0x01020304, [1, 2, 3, 4]],
    ] as const) {
      session.setInt32('edge', value);
      expect([...session.getBytes('edge')!]).toEqual(bytes);
      expect(session.getInt32('edge')).toBe(value);
    }
    expect(() => session.setInt32('x', 2 ** 31)).toThrow(RangeError);
    expect(() => session.setInt32('x', 1.5)).toThrow(/32-bit integer/);
  });

  it('typed JSON and class instances through class-transformer', () => {
    const { session } = loadedSession();
    session.set('cart', { items: ['a', 'b'], total: 3 });
    expect(session.get<{ items: string[] }>('cart')).toEqual({ items: ['a', 'b'], total: 3 });
    const user = Object.assign(new User(), {
      name: 'Ada',
      address: Object.assign(new Address(), { city: 'London' }),
    });
    session.set('user', user);
    const back = session.get('user', User)!;
    expect(back).toBeInstanceOf(User);
    expect(back.address).toBeInstanceOf(Address);
    expect(back.greet()).toBe('Hello Ada from London');
  });

  it('keys are case-sensitive and listed without the reserved id field', () => {
    const { session } = loadedSession();
    session.setString('Name', 'a');
    session.setString('name', 'b');
    void session.id;
    expect(session.keys).toEqual(['Name', 'name']);
  });

  it('records only what changed', () => {
    const { session } = loadedSession();
    session.attach(
      new Map([
        ['a', Uint8Array.of(1)],
        ['b', Uint8Array.of(2)],
      ]),
      true,
    );
    session.setString('c', 'x');
    session.remove('a');
    expect([...session.changes.set.keys()]).toEqual(['c']);
    expect([...session.changes.removed]).toEqual(['a']);
    expect(session.changes.cleared).toBe(false);
    session.clear();
    expect(session.changes.cleared).toBe(true);
    expect(session.changes.set.size).toBe(0);
  });

  it('rejects unserialisable values at set, naming the key', () => {
    const { session } = loadedSession();
    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    expect(() => session.set('f', { run: () => 1 })).toThrow(/Session value "f" at \.run is a function/);
    expect(() => session.set('s', Symbol('x'))).toThrow(/"s".*symbol/);
    expect(() => session.set('n', { big: 10n })).toThrow(/"n" at \.big is a BigInt/);
    expect(() => session.set('m', new Map())).toThrow(/"m".*Map/);
    expect(() => session.set('c', cyclic)).toThrow(/"c".*cycle/);
    expect(() => session.set('u', undefined)).toThrow(/remove\("u"\)/);
    expect(() => session.set('i', Infinity)).toThrow(/"i"/);
    expect(session.keys).toEqual([]);
  });

  it('enforces the value, session and key-count limits with RangeErrors naming the key', () => {
    const { session } = loadedSession({ maxValueBytes: 100, maxSessionBytes: 250, maxKeys: 3 });
    expect(() => session.setString('big', 'x'.repeat(101))).toThrow(/"big" is 101 bytes.*maxValueBytes/);
    session.setString('a', 'x'.repeat(100));
    session.setString('b', 'x'.repeat(100));
    expect(() => session.setString('c', 'x'.repeat(100))).toThrow(
      /"c" would grow the session.*maxSessionBytes/,
    );
    session.setString('c', 'x');
    expect(() => session.setString('d', 'x')).toThrow(/"d" would exceed 3 keys/);
    session.setString('a', 'y'); // replacing an existing key is fine
  });

  it('asks the host before the first value of a session is stored', () => {
    const { session, host } = loadedSession();
    void session.id;
    expect(host.beforeEstablish).not.toHaveBeenCalled();
    session.setString('x', '1');
    session.setString('y', '2');
    expect(host.beforeEstablish).toHaveBeenCalledTimes(1);
  });
});
