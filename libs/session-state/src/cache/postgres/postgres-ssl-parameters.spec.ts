import { connectsByIp, sslParametersOf } from './postgres-ssl-parameters.js';

describe('sslParametersOf: the parameters from which pg takes its TLS settings, as pg-connection-string reads them', () => {
  const base = 'postgres://app:s%40cret@db.internal:5432/shop';
  it.each([
    ['', []],
    ['?application_name=x', []],
    ['?sslmode=require', ['sslmode=require']],
    ['?sslmode=disable', ['sslmode=disable']],
    ['?sslmode=', []], // empty: pg keeps the ssl option
    ['?ssl=0', ['ssl=0']],
    ['?ssl=true', ['ssl=true']],
    ['?ssl=no-verify', ['ssl=no-verify']],
    ['?sslrootcert=/etc/ca.pem&sslmode=verify-full', ['sslmode=verify-full', 'sslrootcert']],
    ['?sslcert=/c.pem&sslkey=/k.pem', ['sslcert', 'sslkey']],
    ['?sslnegotiation=direct', ['sslnegotiation=direct']],
    ['?sslnegotiation=postgres', []],
    ['?sslmode=require&sslmode=', []], // the last one counts
    ['?sslmode=&sslmode=require', ['sslmode=require']],
  ])('%s', (query, expected) => {
    expect(sslParametersOf(`${base}${query}`)).toEqual(expected);
  });

  it('nothing for no connection string, or one that is not a URL', () => {
    expect(sslParametersOf(undefined)).toEqual([]);
    expect(sslParametersOf('not a url')).toEqual([]);
  });

  it('connectsByIp: an IPv4 or IPv6 host, not a name', () => {
    expect(connectsByIp('postgres://app@10.0.0.5:5432/shop')).toBe(true);
    expect(connectsByIp('postgres://app@[::1]:5432/shop')).toBe(true);
    expect(connectsByIp('postgres://app@db.internal:5432/shop')).toBe(false);
    expect(connectsByIp(undefined)).toBe(false);
    // A host parameter overrides the URL's.
    expect(connectsByIp('postgres://app@db.internal:5432/shop?host=10.0.0.5')).toBe(true);
    expect(connectsByIp('postgres://app@10.0.0.5:5432/shop?host=db.internal')).toBe(false);
  });
});
