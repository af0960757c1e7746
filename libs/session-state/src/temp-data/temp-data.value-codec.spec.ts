import {
  assertTempDataValue,
  decodeTempData,
  encodeTempData,
  TEMP_DATA_MAX_DEPTH,
} from './temp-data.value-codec.js';
import { TempDataFormatError } from '../errors/temp-data.errors.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const roundTrip = (value: unknown): unknown =>
  decodeTempData(encodeTempData([['Value', value]])).get('Value');

function nestedArrays(levels: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** Deterministic pseudo-random bytes (mulberry32), so a failure can be replayed. */
function randomBytes(seed: number, length: number): Uint8Array {
  let state = seed;
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    bytes[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return bytes;
}

function expectFormatError(input: Uint8Array): TempDataFormatError {
  let thrown: unknown;
  try {
    decodeTempData(input);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TempDataFormatError);
  return thrown as TempDataFormatError;
}

describe('TempData value codec', () => {
  describe('round trip keeps types', () => {
    it.each([
      ['a string', 'Customer Ada added'],
      ['an empty string', ''],
      ['unicode, including a lone surrogate', 'héllo 🌍 \u2028 \ud800 "quoted" \\'],
      ['an integer', 42],
      ['a fraction', -0.125],
      ['the largest number', Number.MAX_VALUE],
      ['zero', 0],
      ['true', true],
      ['false', false],
      ['null', null],
    ])('%s', (_label, value) => {
      expect(roundTrip(value)).toBe(value);
    });

    it.each([
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
      ['-0', -0],
    ])('the special number %s', (_label, value) => {
      expect(Object.is(roundTrip(value), value)).toBe(true);
    });

    it('a Date comes back as a Date with the same time, even at the ends of the range', () => {
      for (const date of [new Date('2024-02-29T12:34:56.789Z'), new Date(8.64e15), new Date(-8.64e15)]) {
        const decoded = roundTrip(date);
        expect(decoded).toBeInstanceOf(Date);
        expect((decoded as Date).getTime()).toBe(date.getTime());
      }
    });

    it('a string that looks like a date stays a string', () => {
      for (const value of ['2024-02-29T12:34:56.789Z', '2024-02-29', 'Thu, 29 Feb 2024 12:00:00 GMT']) {
        expect(roundTrip(value)).toBe(value);
      }
    });

    it('nested arrays and plain objects keep their shape and leaf types', () => {
      const value = {
        name: 'Ada',
        tags: ['a', 1, true, null, [new Date(0), { deep: [-0, NaN] }]],
        address: { city: 'London', zip: null, created: new Date(1_000) },
        empty: {},
        none: [],
      };
      const decoded = roundTrip(value) as typeof value;
      expect(decoded).toStrictEqual(value);
      expect(decoded.address.created).toBeInstanceOf(Date);
      expect(Object.is((decoded.tags[4] as [Date, { deep: number[] }])[1].deep[0], -0)).toBe(true);
    });

    it('a null-prototype object round-trips as a plain object', () => {
      const value = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
      expect(roundTrip(value)).toEqual({ a: 1 });
    });

    it('objects whose keys look like tags or format fields come back exactly, not as tags', () => {
      const lookalikes: unknown[] = [
        { $d: 0 },
        { $n: 'NaN' },
        { $n: '-0' },
        { $$d: 1 },
        { $: 'dollar', $$: 'two', $$$n: 'three' },
        { v: 1, d: { Message: 'x' } },
        { $d: new Date(5), plain: 'x' },
        [{ $d: '2024-01-01T00:00:00.000Z' }],
      ];
      for (const value of lookalikes) {
        const decoded = roundTrip(value);
        expect(decoded).toStrictEqual(value);
        expect(decoded).not.toBeInstanceOf(Date);
      }
    });

    it('keeps "__proto__" and "constructor" as ordinary keys without touching the prototype', () => {
      const value = JSON.parse('{"__proto__":{"polluted":true},"constructor":"c"}') as Record<
        string,
        unknown
      >;
      const decoded = roundTrip(value) as Record<string, unknown>;
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(Object.keys(decoded)).toEqual(['__proto__', 'constructor']);
      expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toEqual({ polluted: true });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('keeps TempData keys exactly, including ones that look like tags', () => {
      const entries: [string, unknown][] = [
        ['Message', 'hi'],
        ['$d', 1],
        ['$$n', 'x'],
        ['', 'empty key'],
        ['__proto__', 'p'],
        ['message', 'different case is a different entry here'],
      ];
      expect([...decodeTempData(encodeTempData(entries))]).toEqual(entries);
    });

    it('allows shared (non-cyclic) references', () => {
      const shared = { id: 1 };
      expect(roundTrip({ a: shared, b: [shared, shared] })).toEqual({
        a: { id: 1 },
        b: [{ id: 1 }, { id: 1 }],
      });
    });

    it(`allows ${TEMP_DATA_MAX_DEPTH} nested containers, a Date at the bottom included`, () => {
      const value = nestedArrays(TEMP_DATA_MAX_DEPTH, new Date(7));
      expect(() => assertTempDataValue('Deep', value)).not.toThrow();
      expect(roundTrip(value)).toEqual(value);
    });
  });

  describe('format', () => {
    it('is compact versioned UTF-8 JSON with ordinary values written as themselves', () => {
      const bytes = encodeTempData([
        ['Message', 'Customer Ada added'],
        ['Count', 3],
      ]);
      expect(text(bytes)).toBe('{"v":1,"d":{"Message":"Customer Ada added","Count":3}}');
    });

    it('writes explicit tags for Date and special numbers, and escapes "$" keys', () => {
      const bytes = encodeTempData([['x', { when: new Date(0), n: NaN, $d: -0 }]]);
      expect(text(bytes)).toBe('{"v":1,"d":{"x":{"when":{"$d":0},"n":{"$n":"NaN"},"$$d":{"$n":"-0"}}}}');
    });

    it('encodes no entries as an empty document', () => {
      expect(text(encodeTempData([]))).toBe('{"v":1,"d":{}}');
      expect(decodeTempData(encodeTempData([])).size).toBe(0);
    });
  });

  describe('assertTempDataValue rejects what would not survive, naming key and path', () => {
    class Customer {
      constructor(readonly name: string) {}
    }
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = { back: cycle };

    it.each<[string, unknown, RegExp]>([
      ['a nested undefined', { a: undefined }, /^TempData value "Key" at \.a is undefined; /],
      ['an array hole', [1, , 3], /at \[1\] is undefined/],
      ['a function', { items: [1, 2, () => 1] }, /at \.items\[2\] is a function/],
      ['a symbol', Symbol('s'), /^TempData value "Key" is a symbol; /],
      ['a bigint', [10n], /at \[0\] is a bigint.*string/],
      ['a Map', new Map([[1, 2]]), /is a Map.*Object\.fromEntries/],
      ['a Set', { s: new Set([1]) }, /at \.s is a Set/],
      ['a RegExp', /x/, /is a RegExp/],
      ['a class instance', { who: new Customer('Ada') }, /at \.who is an instance of class Customer/],
      ['a boxed string', new String('x'), /is an instance of class String/],
      ['an invalid Date', { at: new Date('nope') }, /at \.at is an invalid Date/],
      ['a cycle', cycle, /at \.self\.back is a cycle/],
      ['too deep a nesting', nestedArrays(TEMP_DATA_MAX_DEPTH + 1), /is nested more than 64 levels deep/],
      ['a symbol key', { [Symbol('k')]: 1 }, /has a symbol key/],
      ['a top-level undefined', undefined, /^TempData value "Key" is undefined/],
      ['an odd property name', { 'my key': [undefined] }, /at \["my key"\]\[0\] is undefined/],
      [
        'an array with a named property',
        { rows: Object.assign([1, 2], { total: 2 }) },
        /at \.rows is an array with named properties, which it would lose/,
      ],
      [
        'an array with a symbol key',
        { rows: Object.assign([1], { [Symbol('meta')]: 1 }) },
        /at \.rows is an array with named properties/,
      ],
      [
        'a Date with a symbol key',
        Object.assign(new Date(0), { [Symbol('zone')]: 'UTC' }),
        /is a Date with properties of its own/,
      ],
      [
        'a Date with a property of its own',
        Object.assign(new Date(0), { zone: 'UTC' }),
        /^TempData value "Key" is a Date with properties of its own/,
      ],
    ])('%s', (_label, value, message) => {
      expect(() => assertTempDataValue('Key', value)).toThrow(TypeError);
      expect(() => assertTempDataValue('Key', value)).toThrow(message);
    });

    it('says what is supported and what to do instead', () => {
      expect(() => assertTempDataValue('Message', { items: [1, 2, () => 1] })).toThrow(
        new TypeError(
          'TempData value "Message" at .items[2] is a function; TempData holds string, number, boolean, null, ' +
            'Date and arrays/plain objects of those. Store an id and load the object again instead.',
        ),
      );
    });

    it('encodeTempData rejects the same values with the same TypeError', () => {
      expect(() => encodeTempData([['Message', { items: [() => 1] }]])).toThrow(
        /^TempData value "Message" at \.items\[0\] is a function/,
      );
      expect(() => encodeTempData([['Message', undefined]])).toThrow(TypeError);
    });
  });

  describe('decodeTempData throws TempDataFormatError for malformed input', () => {
    const valid = encodeTempData([
      ['Message', 'Customer Ada added'],
      ['When', new Date(0)],
      ['List', [1, { $d: 2 }, NaN]],
    ]);

    it('every truncation of a valid payload', () => {
      for (let length = 0; length < valid.length; length++) expectFormatError(valid.subarray(0, length));
    });

    it('random bytes', () => {
      for (let seed = 1; seed <= 200; seed++) expectFormatError(randomBytes(seed, 1 + (seed % 97)));
    });

    it('single corrupted bytes yield a full decode or TempDataFormatError, never another error', () => {
      for (let seed = 1; seed <= 500; seed++) {
        const corrupted = valid.slice();
        const [position, byte] = randomBytes(seed, 2);
        corrupted[position % corrupted.length] = byte;
        try {
          expect(decodeTempData(corrupted)).toBeInstanceOf(Map);
        } catch (error) {
          expect(error).toBeInstanceOf(TempDataFormatError);
        }
      }
    });

    it.each([
      ['a wrong version', '{"v":2,"d":{}}', /version 2 is not supported/],
      ['a version as a string', '{"v":"1","d":{}}', /version "1"/],
      ['no version', '{"d":{}}', /exactly the fields/],
      ['an extra field', '{"v":1,"d":{},"x":1}', /exactly the fields/],
      ['an array document', '[1,{}]', /expected an object/],
      ['a null document', 'null', /expected an object/],
      ['a string document', '"hi"', /expected an object/],
      ['"d" as an array', '{"v":1,"d":[]}', /"d" must be an object/],
      ['"d" as null', '{"v":1,"d":null}', /"d" must be an object/],
      ['invalid JSON', '{"v":1,"d":{"a":}}', /not valid JSON/],
      ['empty input', '', /not valid JSON/],
      ['a leading BOM', '\ufeff{"v":1,"d":{}}', /not valid JSON/],
      ['an unknown tag', '{"v":1,"d":{"a":{"$x":1}}}', /unknown tag "\$x"/],
      ['a bare "$" key', '{"v":1,"d":{"a":{"$":1}}}', /unknown tag "\$"/],
      ['a tag mixed with keys', '{"v":1,"d":{"a":{"$d":1,"b":2}}}', /only key/],
      ['a Date tag with a string', '{"v":1,"d":{"a":{"$d":"2024-01-01"}}}', /Date tag/],
      ['a Date tag out of range', '{"v":1,"d":{"a":{"$d":8640000000000001}}}', /Date tag/],
      ['a Date tag with a fraction', '{"v":1,"d":{"a":{"$d":1.5}}}', /Date tag/],
      ['a number tag with a bad name', '{"v":1,"d":{"a":{"$n":"nan"}}}', /number tag/],
      ['a number tag with a number', '{"v":1,"d":{"a":{"$n":1}}}', /number tag/],
      ['an overflowing number', '{"v":1,"d":{"a":1e400}}', /out of range/],
      ['65 nested arrays', `{"v":1,"d":{"a":${'['.repeat(65)}${']'.repeat(65)}}}`, /more than 64 levels/],
      [
        '65 nested objects',
        `{"v":1,"d":{"a":${'{"a":'.repeat(65)}1${'}'.repeat(65)}}}`,
        /more than 64 levels/,
      ],
    ])('%s', (_label, json, message) => {
      expect(expectFormatError(utf8(json)).message).toMatch(message);
    });

    it('accepts exactly 64 nested arrays', () => {
      const json = `{"v":1,"d":{"a":${'['.repeat(64)}${']'.repeat(64)}}}`;
      expect(decodeTempData(utf8(json)).get('a')).toEqual(nestedArrays(63, []));
    });

    it('invalid UTF-8', () => {
      const bytes = Uint8Array.from([...utf8('{"v":1,"d":{"a":"'), 0xc3, 0x28, ...utf8('"}}')]);
      expect(expectFormatError(bytes).message).toMatch(/not valid UTF-8/);
    });

    it('a hugely nested payload, quickly and without blowing the stack', () => {
      const depth = 200_000;
      const started = Date.now();
      expectFormatError(utf8(`{"v":1,"d":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`));
      expectFormatError(utf8('['.repeat(depth)));
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('something that is not bytes', () => {
      expectFormatError('{"v":1,"d":{}}' as unknown as Uint8Array);
      expectFormatError(undefined as unknown as Uint8Array);
    });

    it('tells the caller what to do', () => {
      const error = expectFormatError(utf8('{"v":9,"d":{}}'));
      expect(error.name).toBe('TempDataFormatError');
      expect(error.message).toMatch(/Discard it and continue with empty TempData\.$/);
    });
  });
});
