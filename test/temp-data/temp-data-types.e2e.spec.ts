import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Browser } from './support/browser.js';
import { startTempDataApp } from './support/temp-data-test.app.js';

const date = (iso: string) => ({ type: 'Date', iso });
const str = (value: string) => ({ type: 'string', value });
const num = (value: number) => ({ type: 'number', value });
const bool = (value: boolean) => ({ type: 'boolean', value });
const nil = { type: 'null' };
const obj = (entries: Record<string, unknown>) => ({ type: 'object', prototype: 'Object', entries });
const arr = (...items: unknown[]) => ({ type: 'array', items });

/** What `GET /td/types` must describe after `POST /td/types` (see typedSamples()). */
const EXPECTED_TYPES = {
  When: date('2024-02-29T12:34:56.789Z'),
  DateLike: str('2024-02-29T12:34:56.789Z'),
  Text: str('Customer Ada added'),
  Count: num(42),
  Ratio: num(-1.5),
  Special: arr(...['NaN', 'Infinity', '-Infinity', '-0'].map((text) => ({ type: 'number', text })), num(0)),
  Flag: bool(true),
  Off: bool(false),
  Nothing: nil,
  List: arr(
    num(1),
    str('two'),
    bool(false),
    nil,
    date('1970-01-01T00:00:00.000Z'),
    obj({ deep: arr(str('2020-01-01')) }),
  ),
  Nested: obj({
    customer: obj({
      name: str('Ada'),
      joined: date('1999-12-31T23:59:59.000Z'),
      tags: arr(str('a'), str('b')),
    }),
    $d: str('a user key that looks like a tag'),
    empty: obj({}),
  }),
};

describe.each(['cookie', 'session'] as const)('TempData value types over HTTP (%s provider)', (provider) => {
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startTempDataApp({ tempData: { provider } }));
  });
  afterAll(() => app.close());

  it('string, number, boolean, null, Date, arrays and plain objects come back with their types', async () => {
    const browser = new Browser(url);
    const stored = await browser.post('/td/types');
    expect(stored.status).toBe(200);
    expect(stored.body).toEqual({ keys: Object.keys(EXPECTED_TYPES) });
    const next = await browser.get('/td/types');
    expect(next.status).toBe(200);
    expect(next.body).toEqual(EXPECTED_TYPES);
    // Still there (peeked), and still typed, a request later.
    expect((await browser.get('/td/types')).body).toEqual(EXPECTED_TYPES);
  });

  it('a string that looks like a date stays a string; JSON from a request body keeps its shape', async () => {
    const browser = new Browser(url);
    const values = {
      Iso: '2024-02-29T12:34:56.789Z',
      Short: '2024-02-29',
      Slashed: '02/29/2024 12:00:00',
      Numberish: '42',
      Boolish: 'true',
      Unicode: 'Grüße, 🎉 «quoted» "double" ;semi,colon',
      Tagged: { $d: 0, $$x: 'two dollars', $n: 'NaN' },
    };
    await browser.run(...Object.entries(values).map(([key, value]) => ({ op: 'set' as const, key, value })));
    const described = (await browser.get('/td/types')).body as Record<string, unknown>;
    expect(described).toEqual({
      Iso: str(values.Iso),
      Short: str(values.Short),
      Slashed: str(values.Slashed),
      Numberish: str('42'),
      Boolish: str('true'),
      Unicode: str(values.Unicode),
      Tagged: obj({ $d: num(0), $$x: str('two dollars'), $n: str('NaN') }),
    });
    expect(await browser.run({ op: 'entries' })).toEqual([values]);
  });

  describe('unsupported values fail at assignment, naming the key', () => {
    it.each([
      ['function', 'Callback', 'TempData value "Callback" is a function'],
      ['bigint', 'Total', 'TempData value "Total" is a bigint'],
      ['symbol', 'Marker', 'TempData value "Marker" is a symbol'],
      ['map', 'Lookup', 'TempData value "Lookup" is a Map'],
      ['class', 'Customer', 'TempData value "Customer" is an instance of class Customer'],
      ['nested', 'Payload', 'TempData value "Payload" at .items[1] is a Set'],
      ['cycle', 'Graph', 'TempData value "Graph" at .self is a cycle'],
    ])('%s', async (kind, key, message) => {
      const browser = new Browser(url);
      const res = await browser.post(`/td/unsupported/${kind}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ error: 'TypeError', has: false, keys: ['Before'] });
      expect((res.body as { message: string }).message).toContain(message);
      // The request went on; the valid value was saved, the invalid one never existed.
      expect(await browser.run({ op: 'keys' }, { op: 'get', key: 'Before' }, { op: 'peek', key })).toEqual([
        ['Before'],
        'kept',
        null,
      ]);
    });
  });
});
