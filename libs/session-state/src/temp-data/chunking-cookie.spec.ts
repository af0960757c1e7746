import {
  DEFAULT_COOKIE_CHUNK_SIZE,
  planChunkedCookie,
  readChunkedCookie,
  staleChunkNames,
  type PlannedCookie,
} from './chunking-cookie.js';

const NAME = '.Nest.TempData';
const ATTRIBUTES = '; Path=/; HttpOnly; Secure; SameSite=Lax';
const formatSetCookie = (name: string, value: string): string => `${name}=${value}${ATTRIBUTES}`;
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function base64urlOfLength(length: number): string {
  let value = '';
  for (let i = 0; i < length; i++) value += BASE64URL[(i * 7 + (i >> 6)) % 64];
  return value;
}

function asRequestCookies(cookies: PlannedCookie[]): Record<string, string> {
  return Object.fromEntries(cookies.map((cookie) => [cookie.name, cookie.value]));
}

describe('chunking cookie', () => {
  describe('planChunkedCookie', () => {
    it('writes a small value as one cookie', () => {
      expect(planChunkedCookie(NAME, 'abc', { attributesLength: ATTRIBUTES.length })).toEqual([
        { name: NAME, value: 'abc' },
      ]);
    });

    it('uses one cookie while the whole header fits in the chunk size, and chunks one character later', () => {
      const fits = DEFAULT_COOKIE_CHUNK_SIZE - NAME.length - 1 - ATTRIBUTES.length;
      const options = { attributesLength: ATTRIBUTES.length };
      expect(planChunkedCookie(NAME, base64urlOfLength(fits), options)).toHaveLength(1);
      expect(planChunkedCookie(NAME, base64urlOfLength(fits + 1), options)).toHaveLength(3);
    });

    it.each([
      ['attributesLength', { attributesLength: ATTRIBUTES.length }],
      ['formatSetCookie', { formatSetCookie }],
    ])('splits a 20 KB value into chunks under 4050 bytes with attributes (%s)', (_label, options) => {
      const value = base64urlOfLength(20 * 1024);
      const cookies = planChunkedCookie(NAME, value, options);
      const chunks = cookies.slice(1);

      expect(cookies[0]).toEqual({ name: NAME, value: `chunks-${chunks.length}` });
      expect(chunks.length).toBe(6);
      chunks.forEach((chunk, index) => expect(chunk.name).toBe(`${NAME}C${index + 1}`));
      for (const cookie of cookies) {
        expect(Buffer.byteLength(formatSetCookie(cookie.name, cookie.value))).toBeLessThanOrEqual(4050);
      }
      expect(chunks.map((chunk) => chunk.value).join('')).toBe(value);
      expect(readChunkedCookie(NAME, asRequestCookies(cookies))).toEqual({ value });
    });

    it('honours a custom chunk size exactly', () => {
      const cookies = planChunkedCookie('t', base64urlOfLength(100), { attributesLength: 0, chunkSize: 20 });
      for (const cookie of cookies)
        expect(cookie.name.length + 1 + cookie.value.length).toBeLessThanOrEqual(20);
      expect(cookies.slice(1).map((c) => c.value.length)).toEqual([16, 16, 16, 16, 16, 16, 4]);
      expect(readChunkedCookie('t', asRequestCookies(cookies))).toEqual({ value: base64urlOfLength(100) });
    });

    it('chunks a short value that starts with "chunks-", so it is not read back as a chunk count', () => {
      const cookies = planChunkedCookie(NAME, 'chunks-2', { attributesLength: 0 });
      expect(cookies).toEqual([
        { name: NAME, value: 'chunks-1' },
        { name: `${NAME}C1`, value: 'chunks-2' },
      ]);
      expect(readChunkedCookie(NAME, asRequestCookies(cookies))).toEqual({ value: 'chunks-2' });
    });

    it('plans one empty cookie for an empty value', () => {
      expect(planChunkedCookie(NAME, '', { attributesLength: 0 })).toEqual([{ name: NAME, value: '' }]);
    });

    it('refuses values a cookie cannot carry, and bad names', () => {
      expect(() => planChunkedCookie(NAME, 'a b', { attributesLength: 0 })).toThrow(/base64url/);
      expect(() => planChunkedCookie(NAME, 'a;b', { attributesLength: 0 })).toThrow(TypeError);
      expect(() => planChunkedCookie('bad name', 'x', { attributesLength: 0 })).toThrow(
        /not a valid cookie name/,
      );
    });

    it('refuses to plan more than maxChunks chunks, saying what to do', () => {
      const value = base64urlOfLength(40 * 1024);
      expect(() => planChunkedCookie(NAME, value, { attributesLength: 0, maxChunks: 5 })).toThrow(
        /needs more than 5 chunks.*session provider/,
      );
    });

    it('refuses when the name and attributes leave no room for data', () => {
      expect(() => planChunkedCookie(NAME, base64urlOfLength(5000), { attributesLength: 4040 })).toThrow(
        /leaving no room/,
      );
    });

    it('refuses a formatSetCookie that does not write the value verbatim', () => {
      const quoting = (name: string, value: string): string => `${name}=${value.replace(/-/g, '%2D')}`;
      expect(() => planChunkedCookie(NAME, '-'.repeat(5000), { formatSetCookie: quoting })).toThrow(
        /verbatim/,
      );
    });

    it('refuses invalid options', () => {
      expect(() => planChunkedCookie(NAME, 'x', { attributesLength: -1 })).toThrow(/attributesLength/);
      expect(() => planChunkedCookie(NAME, 'x', { attributesLength: 0, chunkSize: 0 })).toThrow(/chunkSize/);
      expect(() => planChunkedCookie(NAME, 'x', { attributesLength: 0, maxChunks: 1.5 })).toThrow(
        /maxChunks/,
      );
    });
  });

  describe('readChunkedCookie', () => {
    it('returns undefined when there is no cookie (or an empty one)', () => {
      expect(readChunkedCookie(NAME, {})).toBeUndefined();
      expect(readChunkedCookie(NAME, { [NAME]: '' })).toBeUndefined();
      expect(readChunkedCookie(NAME, { [NAME]: undefined })).toBeUndefined();
    });

    it('ignores inherited properties: a cookie named "constructor" is absent', () => {
      expect(readChunkedCookie('constructor', {})).toBeUndefined();
      expect(readChunkedCookie('toString', {})).toBeUndefined();
      const inherited = Object.create({ [NAME]: 'chunks-1', [`${NAME}C1`]: 'x' }) as Record<string, string>;
      expect(readChunkedCookie(NAME, inherited)).toBeUndefined();
    });

    it('returns a plain cookie as it is', () => {
      expect(readChunkedCookie(NAME, { [NAME]: 'abc' })).toEqual({ value: 'abc' });
    });

    it('reports a missing or empty chunk', () => {
      const cookies = { [NAME]: 'chunks-3', [`${NAME}C1`]: 'a', [`${NAME}C3`]: 'c' };
      expect(readChunkedCookie(NAME, cookies)).toEqual({ error: 'missing-chunk' });
      expect(readChunkedCookie(NAME, { ...cookies, [`${NAME}C2`]: '' })).toEqual({ error: 'missing-chunk' });
      expect(readChunkedCookie(NAME, { ...cookies, [`${NAME}C2`]: 'b' })).toEqual({ value: 'abc' });
    });

    it('rejects chunks-10000 without looking up any chunk', () => {
      const looked: PropertyKey[] = [];
      const cookies = new Proxy<Record<string, string>>(
        { [NAME]: 'chunks-10000' },
        {
          get: (target, property) => {
            looked.push(property);
            return Reflect.get(target, property) as unknown;
          },
          getOwnPropertyDescriptor: (target, property) => {
            looked.push(property);
            return Reflect.getOwnPropertyDescriptor(target, property);
          },
        },
      );
      expect(readChunkedCookie(NAME, cookies)).toEqual({ error: 'too-many-chunks' });
      expect(looked.filter((property) => property !== NAME)).toEqual([]);
      expect(readChunkedCookie(NAME, { [NAME]: `chunks-${'9'.repeat(400)}` })).toEqual({
        error: 'too-many-chunks',
      });
    });

    it('honours maxChunks', () => {
      const cookies = asRequestCookies(
        planChunkedCookie(NAME, base64urlOfLength(100), { attributesLength: 0, chunkSize: 40 }),
      );
      expect(readChunkedCookie(NAME, cookies, { maxChunks: 4 })).toEqual({ error: 'too-many-chunks' });
      expect(readChunkedCookie(NAME, cookies, { maxChunks: 5 })).toEqual({ value: base64urlOfLength(100) });
    });

    it.each([
      'chunks-abc',
      'chunks-',
      'chunks-0',
      'chunks-01',
      'chunks--1',
      'chunks-1.5',
      'chunks- 2',
      'chunks-2x',
    ])('rejects the malformed count %s', (main) => {
      expect(readChunkedCookie(NAME, { [NAME]: main, [`${NAME}C1`]: 'a', [`${NAME}C2`]: 'b' })).toEqual({
        error: 'malformed-count',
      });
    });
  });

  describe('staleChunkNames', () => {
    const cookies = {
      [NAME]: 'chunks-5',
      [`${NAME}C4`]: 'd',
      [`${NAME}C1`]: 'a',
      [`${NAME}C12`]: 'orphan',
      [`${NAME}C2`]: 'b',
      [`${NAME}C3`]: 'c',
      [`${NAME}C5`]: 'e',
      [`${NAME}C0`]: 'not a chunk',
      [`${NAME}C01`]: 'not a chunk',
      [`${NAME}Cx`]: 'not a chunk',
      [`${NAME}X1`]: 'not a chunk',
      [`${NAME.toLowerCase()}C7`]: 'another cookie',
      session: 'other',
    };

    it('lists the chunks beyond the ones just written, in order, orphans included', () => {
      expect(staleChunkNames(NAME, cookies, 2)).toEqual([
        `${NAME}C3`,
        `${NAME}C4`,
        `${NAME}C5`,
        `${NAME}C12`,
      ]);
    });

    it('lists every chunk when the cookie is written unchunked or deleted (keepCount 0)', () => {
      expect(staleChunkNames(NAME, cookies, 0)).toEqual([1, 2, 3, 4, 5, 12].map((k) => `${NAME}C${k}`));
    });

    it('lists nothing when every chunk is still in use or there are none', () => {
      expect(staleChunkNames(NAME, cookies, 12)).toEqual([]);
      expect(staleChunkNames(NAME, { [NAME]: 'abc' }, 0)).toEqual([]);
    });
  });
});
