import { MAX_COOKIE_HEADER_LENGTH, readAllCookies, readCookie, readCookieValues } from './cookie-header.js';

describe('cookie header', () => {
  it('finds a cookie by exact name, first occurrence wins', () => {
    const header = 'x.Nest.Session=no; .Nest.Session=yes; .Nest.Session=second; other=1';
    expect(readCookie(header, '.Nest.Session')).toBe('yes');
    expect(readCookie('a=1;b=2', 'b')).toBe('2');
    expect(readCookie('ab=1', 'b')).toBeUndefined();
    expect(readCookie('b', 'b')).toBeUndefined();
    expect(readCookie(undefined, 'b')).toBeUndefined();
  });

  it('lists every value of a name in the header order, up to a limit', () => {
    const header = 'x.s=no; s=one; s= two ;s=; other=1; s=three';
    expect(readCookieValues(header, 's', 8)).toEqual(['one', 'two', '', 'three']);
    expect(readCookieValues(header, 's', 2)).toEqual(['one', 'two']);
    expect(readCookieValues(header, 'missing', 8)).toEqual([]);
    expect(readCookieValues(`s=1; a=${'x'.repeat(MAX_COOKIE_HEADER_LENGTH)}`, 's', 8)).toEqual([]);
  });

  it('reads a value sent in double quotes (RFC 6265) without its quotes', () => {
    expect(readCookie('s="abc-_1"; t=2', 's')).toBe('abc-_1');
    expect(readCookieValues('s= "one" ; s=two; s=""', 's', 8)).toEqual(['one', 'two', '']);
    expect({ ...readAllCookies('a="1"; b="; c="x') }).toEqual({ a: '1', b: '"', c: '"x' });
  });

  it('reads all cookies with the first or the last occurrence of each name', () => {
    expect({ ...readAllCookies('a=1; b=2; a=3') }).toEqual({ a: '1', b: '2' });
    expect({ ...readAllCookies('a=1; b=2; a=3', true) }).toEqual({ a: '3', b: '2' });
  });

  it('ignores an oversized header instead of scanning it', () => {
    const header = `a=${'x'.repeat(MAX_COOKIE_HEADER_LENGTH)}; b=1`;
    expect(readCookie(header, 'b')).toBeUndefined();
    expect(readAllCookies(header)).toEqual({});
  });

  it('reads all cookies without prototype pollution', () => {
    const all = readAllCookies('__proto__=1; a=2; a=3; =4; b');
    expect(all.a).toBe('2');
    expect(Object.getPrototypeOf(all)).toBeNull();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
