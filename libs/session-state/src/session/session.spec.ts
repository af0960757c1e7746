import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Exclude, Expose, Transform, Type } from 'class-transformer';
import { PayloadTooLargeException } from '@nestjs/common';
import { SessionLimitExceededError, SessionNotLoadedError } from '../errors/session.errors.js';
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

  it('remove() refuses the reserved fields as set() does: the id and the bound user stay (revocation relies on them)', () => {
    const { session } = loadedSession();
    const id = session.id;
    session.setReserved('\u0000uid', new TextEncoder().encode('hal'));
    session.changes.reset();
    for (const reserved of ['\u0000id', '\u0000uid']) {
      expect(() => session.remove(reserved)).toThrow(TypeError);
      expect(() => session.remove(reserved)).toThrow(/not starting with NUL/);
    }
    expect(session.id).toBe(id);
    expect(session.getReserved('\u0000uid')).toBeDefined();
    expect(session.changes.isEmpty).toBe(true);
    expect(() => session.remove('')).toThrow(TypeError);
    session.remove('absent'); // an app key that is not there: nothing to do, no error
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

  it('rejects unserialisable values at set with a TypeError naming the key', () => {
    const { session } = loadedSession();
    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    const cyclicInArray: unknown[] = [];
    cyclicInArray.push({ back: cyclicInArray });
    let deep: unknown = 'leaf';
    for (let i = 0; i < 70; i++) deep = { deep };
    const rows: [key: string, value: unknown, message: RegExp][] = [
      ['f', { run: () => 1 }, /Session value "f" at \.run is a function/],
      ['g', () => 1, /"g" is a function/],
      ['s', Symbol('x'), /"s".*symbol/],
      ['n', { big: 10n }, /"n" at \.big is a BigInt/],
      ['b', 10n, /"b" is a BigInt/],
      ['m', new Map(), /"m".*Map/],
      ['set', { tags: new Set(['a']) }, /"set" at \.tags is a Set/],
      ['w', new WeakMap(), /"w".*weak collection/],
      ['p', Promise.resolve(1), /"p".*Promise/],
      ['c', cyclic, /"c".*cycle/],
      ['a', cyclicInArray, /"a" at \[0\]\.back contains a cycle/],
      ['d', deep, /"d" is nested deeper than 64 levels/],
      ['u', undefined, /remove\("u"\)/],
      ['i', Infinity, /"i" is Infinity/],
      ['nan', { x: [Number.NaN] }, /"nan" at \.x\[0\] is NaN/],
      // What JSON.stringify changes without an error: {} for a RegExp or an Error, index-keyed objects for
      // bytes, null for an invalid Date.
      ['re', { match: /x/g }, /"re" at \.match is a RegExp, which JSON stores as \{\}/],
      ['err', new Error('boom'), /"err" is an Error, which JSON stores as \{\}. Store its message/],
      ['u8', Uint8Array.of(1, 2), /"u8" is binary data.*session\.setBytes\(\)/],
      ['buf', { data: Buffer.from('hi') }, /"buf" at \.data is binary data/],
      ['ab', new ArrayBuffer(2), /"ab" is binary data/],
      ['date', new Date('not a date'), /"date" is an invalid Date, which JSON stores as null/],
      // Each toJSON() checked on what it returns: nothing, or something JSON.stringify throws on.
      ['tj', { toJSON: () => undefined }, /"tj" serialises to nothing.*remove\("tj"\)/],
      ['tb', { toJSON: () => 10n }, /"tb" cannot be serialised: .*BigInt/],
    ];
    for (const [key, value, message] of rows) {
      // The class, not only the message: apps and the docs tell a bad value (TypeError) from a limit (413).
      expect(() => session.set(key, value)).toThrow(TypeError);
      expect(() => session.set(key, value)).toThrow(message);
    }
    expect(session.keys).toEqual([]);
  });

  it('keeps what JSON defines: a Date as its ISO string, 64 levels of nesting (the 65th is refused)', () => {
    const { session } = loadedSession();
    const at = new Date(Date.UTC(2026, 11, 5, 12));
    session.set('when', { at });
    expect(session.get('when')).toEqual({ at: '2026-12-05T12:00:00.000Z' });
    const nest = (levels: number) => {
      let value: unknown = {};
      for (let i = 1; i < levels; i++) value = { value };
      return value;
    };
    session.set('deep64', nest(64));
    expect(session.get('deep64')).toEqual(nest(64));
    expect(() => session.set('deep65', nest(65))).toThrow(/"deep65" is nested deeper than 64 levels/);
  });

  it("honours a value's own toJSON and class-transformer's view of a class instance", () => {
    const { session } = loadedSession({ maxValueBytes: 4096, maxSessionBytes: 65536, maxKeys: 20 });
    class AppError extends Error {
      readonly code = 'E_APP';
      toJSON() {
        return { code: this.code, message: this.message };
      }
    }
    session.set('failure', new AppError('boom'));
    expect(session.get('failure')).toEqual({ code: 'E_APP', message: 'boom' });
    class Profile {
      @Expose() name = 'hal';
      @Exclude() lastError = new Error('not stored');
      @Transform(({ value }: { value: Buffer }) => value.toString('base64'), { toPlainOnly: true })
      avatar = Buffer.from('hi');
    }
    session.set('profile', new Profile());
    expect(session.get('profile')).toEqual({ name: 'hal', avatar: 'aGk=' });
    // Before class-transformer sees an instance: it would call a function field and turn a Set into an array.
    let calls = 0;
    class Wizard {
      step = 1;
      next = () => ++calls;
    }
    expect(() => session.set('wizard', new Wizard())).toThrow(/"wizard" at \.next is a function/);
    expect(calls).toBe(0);
    class Tagged {
      tags = new Set(['a']);
    }
    expect(() => session.set('tagged', new Tagged())).toThrow(/"tagged" at \.tags is a Set/);
    // A class with a toJSON of its own serialises itself: class-transformer does not read toJSON.
    class Money {
      cents = 110;
      toJSON() {
        return '1.10';
      }
    }
    session.set('price', new Money());
    expect(session.get('price')).toBe('1.10');
    // JavaScript's own classes are judged as they are, class-transformer installed or not.
    expect(() => session.set('m', new Map([['a', 1]]))).toThrow(/"m" is a Map/);
    expect(() => session.set('e', new Error('x'))).toThrow(/"e" is an Error/);
    expect(() => session.set('b', Buffer.from('x'))).toThrow(/"b" is binary data/);
    // A Date is a leaf: one at the 64th level is within the limit, as in TempData.
    let deep: unknown = { at: new Date(0) };
    for (let i = 1; i < 64; i++) deep = { deep }; // 64 objects, the Date inside the last
    session.set('deepDate', deep);
  });

  it('refuses keys and setString values with a lone UTF-16 surrogate: UTF-8 stores cannot keep them apart', () => {
    const { session } = loadedSession();
    for (const key of ['a\ud800', 'a\udbff', '\udc00b']) {
      expect(() => session.setString(key, 'x')).toThrow(/Session keys must be well-formed UTF-16/);
      expect(() => session.set(key, 1)).toThrow(TypeError);
      expect(() => session.remove(key)).toThrow(TypeError);
    }
    expect(() => session.setString('k', 'a\ud800')).toThrow(/lone UTF-16 surrogate.*session\.set\(\)/);
    // A pair is fine, and set() keeps a lone one inside a value as a JSON escape.
    session.setString('\ud83d\ude00', 'ok');
    session.set('text', 'a\ud800');
    expect(session.get('text')).toBe('a\ud800');
    expect(session.keys).toEqual(['text', '\ud83d\ude00']);
  });

  it('lists keys sorted, whatever order they were set in (every store gives this order)', () => {
    const { session } = loadedSession();
    for (const key of ['zeta', 'alpha', 'Mid', 'b']) session.setString(key, key);
    expect(session.keys).toEqual(['Mid', 'alpha', 'b', 'zeta']);
  });

  it('enforces the value, session and key-count limits with SessionLimitExceededError (a 413 PayloadTooLargeException, not a RangeError) naming the key and the limit', () => {
    const { session } = loadedSession({ maxValueBytes: 100, maxSessionBytes: 250, maxKeys: 3 });
    const expectRefused = (change: () => void, limit: string, message: RegExp) => {
      expect(change).toThrow(SessionLimitExceededError);
      expect(change).toThrow(message);
      let error: unknown;
      try {
        change();
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(PayloadTooLargeException);
      expect(error).not.toBeInstanceOf(RangeError);
      expect((error as SessionLimitExceededError).getStatus()).toBe(413);
      expect((error as SessionLimitExceededError).limit).toBe(limit);
    };
    expectRefused(
      () => session.setString('big', 'x'.repeat(101)),
      'maxValueBytes',
      /"big" is 101 bytes.*maxValueBytes/,
    );
    session.setString('a', 'x'.repeat(100));
    session.setString('b', 'x'.repeat(100));
    expectRefused(
      () => session.setString('c', 'x'.repeat(100)),
      'maxSessionBytes',
      /"c" would grow the session.*maxSessionBytes/,
    );
    session.setString('c', 'x');
    expectRefused(() => session.setString('d', 'x'), 'maxKeys', /"d" would exceed 3 keys/);
    session.setString('a', 'y'); // replacing an existing key is fine
    expect(session.keys).toEqual(['a', 'b', 'c']);
    // The id is not an app key (nor counted by the stores): a session holding maxKeys values still gets one.
    expect(session.id).toMatch(/^[\w-]+$/);
    expectRefused(() => session.setString('d', 'x'), 'maxKeys', /"d" would exceed 3 keys/);
    // The UserSessions binding is one (the stores count it): refused naming it, not its reserved field name.
    expectRefused(
      () => session.setReserved('\u0000uid', Uint8Array.of(1)),
      'maxKeys',
      /^UserSessions\.bind\(\)'s binding \(it takes one of the session's keys\) would exceed 3 keys/,
    );
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
