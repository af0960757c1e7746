import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { resolveRedisCacheOptions } from '../cache/redis/redis-options.validator.js';
import { resolveSessionOptions } from './session-options.resolver.js';

describe('resolveSessionOptions: the documented defaults (DESIGN.md "Session", docs/configuration.md)', () => {
  const resolved = resolveSessionOptions({});

  it('times: idle timeout 20 minutes, ioTimeout 1 minute, the untouched slide skipped within idle / 20', () => {
    expect(resolved.idleTimeout).toBe(20 * 60_000);
    expect(resolved.ioTimeout).toBe(60_000);
    expect(resolved.slideSkipWindow).toBe(60_000);
  });

  it('limits: 256 KiB per value, 1 MiB per session, 1,000 keys; no lock', () => {
    expect(resolved.maxValueBytes).toBe(256 * 1024);
    expect(resolved.maxSessionBytes).toBe(1024 * 1024);
    expect(resolved.maxKeys).toBe(1000);
    expect(resolved.lock).toBeUndefined();
  });

  it('the session cookie: .Nest.Session, path /, HttpOnly, SameSite=Lax, secure as the request, not essential', () => {
    expect(resolved.cookie).toEqual({
      name: '.Nest.Session',
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      securePolicy: 'sameAsRequest',
      isEssential: false,
    });
  });

  it('TempData: in a cookie named .Nest.TempData', () => {
    expect(resolved.tempData.provider).toBe('cookie');
    expect(resolved.tempData.cookie.name).toBe('.Nest.TempData');
  });

  it('lock: true takes the lock defaults (ttl 30 s, acquire timeout 10 s, retry every 200 ms)', () => {
    expect(resolveSessionOptions({ session: { lock: true } }).lock).toEqual({
      ttl: 30_000,
      acquireTimeout: 10_000,
      retryInterval: 200,
    });
  });

  it('ioTimeout 0 turns the bound off; a negative one is a configuration error naming the option', () => {
    expect(resolveSessionOptions({ session: { ioTimeout: 0 } }).ioTimeout).toBe(0);
    expect(() => resolveSessionOptions({ session: { ioTimeout: -1 } })).toThrow(SessionConfigurationError);
    expect(() => resolveSessionOptions({ session: { ioTimeout: -1 } })).toThrow(/session\.ioTimeout/);
  });

  it('durations are whole milliseconds: a fraction (4.1 * 60_000) fails at startup naming the option and the rounding', () => {
    // Before, it started and every Redis write then failed (PEXPIRE takes no fraction): 503 on every request.
    const fraction = 4.1 * 60_000; // 245999.99999999997
    expect(() => resolveSessionOptions({ session: { idleTimeout: fraction } })).toThrow(
      `SessionModule option session.idleTimeout must be a whole number of milliseconds (got ${fraction}): round it, ` +
        'e.g. Math.round(245999.99999999997) = 246000.',
    );
    for (const session of [
      { ioTimeout: 1500.5 },
      { slideSkipWindow: 0.5 },
      { lock: { ttl: 1000.5 } },
      { lock: { acquireTimeout: 10.25 } },
      { lock: { retryInterval: 199.9 } },
    ])
      expect(() => resolveSessionOptions({ session })).toThrow(/must be a whole number of milliseconds/);
    expect(resolveSessionOptions({ session: { idleTimeout: Math.round(fraction) } }).idleTimeout).toBe(
      246_000,
    );
  });

  it("timer-driven durations stop at Node's longest timer (a longer one would fire at once)", () => {
    const max = 2 ** 31 - 1;
    expect(resolveSessionOptions({ session: { ioTimeout: max } }).ioTimeout).toBe(max);
    expect(() => resolveSessionOptions({ session: { ioTimeout: max + 1 } })).toThrow(
      `SessionModule option session.ioTimeout must be at most ${max} ms (got ${max + 1}): about 24.8 days, ` +
        'the longest delay a Node timer runs. 0 disables it.',
    );
    expect(() => resolveSessionOptions({ session: { lock: { ttl: 3e9 } } })).toThrow(
      /session\.lock\.ttl must be at most/,
    );
    // The idle timeout is no timer: a year is fine.
    expect(resolveSessionOptions({ session: { idleTimeout: 365 * 86_400_000 } }).idleTimeout).toBe(
      31_536_000_000,
    );
  });

  it('a session cookie named as a chunk of the TempData cookie fails at startup, naming both options', () => {
    // Before, it started, and every TempData write deleted or overwrote the session cookie.
    for (const [session, tempData] of [
      ['.Nest.TempDataC1', undefined],
      ['sessC2', 'sess'],
      ['tdC10', 'td'],
    ] as const)
      expect(() =>
        resolveSessionOptions({
          session: { cookie: { name: session } },
          tempData: tempData === undefined ? undefined : { cookie: { name: tempData } },
        }),
      ).toThrow(
        /session\.cookie\.name .* is the name of a chunk of the TempData cookie \(tempData\.cookie\.name/,
      );
    // Only a C and a number: these are other names.
    for (const name of ['.Nest.TempDataC', '.Nest.TempDataC0', '.Nest.TempDataCx', '.Nest.TempData2'])
      expect(resolveSessionOptions({ session: { cookie: { name } } }).cookie.name).toBe(name);
  });

  it('cookie paths hold printable ASCII only, and names and paths have a length a browser keeps', () => {
    // Before, a DEL in the path started, and no session cookie was ever kept (nothing logged).
    for (const path of ['/a\u007fb', '/a\u0000', '/ä', '/a b', '/a;b', 'a', `/${'p'.repeat(1024)}`])
      expect(() => resolveSessionOptions({ session: { cookie: { path } } })).toThrow(
        /session\.cookie\.path must start with \/ and hold only printable ASCII/,
      );
    expect(resolveSessionOptions({ session: { cookie: { path: encodeURI('/ä/b') } } }).cookie.path).toBe(
      '/%C3%A4/b',
    );
    expect(() => resolveSessionOptions({ tempData: { cookie: { name: 'n'.repeat(257) } } })).toThrow(
      /tempData\.cookie\.name is 257 characters long: at most 256/,
    );
  });

  it("the TempData cookie takes the session cookie's httpOnly, sameSite and securePolicy unless it sets them", () => {
    const session = {
      cookie: {
        name: 'sid',
        path: '/app',
        domain: 'example.test',
        httpOnly: true,
        sameSite: 'strict',
        securePolicy: 'always',
        isEssential: true,
      },
    } as const;
    // Before, a Secure, Strict session cookie came with a TempData cookie that was neither.
    expect(resolveSessionOptions({ session }).tempData.cookie).toEqual({
      name: '.Nest.TempData',
      path: '/',
      domain: undefined,
      httpOnly: true,
      sameSite: 'strict',
      securePolicy: 'always',
      isEssential: false,
    });
    const own = resolveSessionOptions({ session, tempData: { cookie: { sameSite: 'lax', path: '/x' } } });
    expect(own.tempData.cookie).toMatchObject({ sameSite: 'lax', path: '/x', securePolicy: 'always' });
    // Where it goes is its own: a __Host- TempData cookie beside a session cookie with a domain still starts.
    const host = resolveSessionOptions({ session, tempData: { cookie: { name: '__Host-td' } } });
    expect(host.tempData.cookie).toMatchObject({ name: '__Host-td', path: '/', domain: undefined });
  });

  it('a number given as a string (as read from process.env) is shown quoted and named a string, with the conversion', () => {
    const asText = '500' as unknown as number;
    const named = '(got "500", a string: convert it with Number())';
    expect(() => resolveSessionOptions({ session: { ioTimeout: asText } })).toThrow(
      `SessionModule option session.ioTimeout must be a positive number of milliseconds ${named}.`,
    );
    expect(() => resolveSessionOptions({ session: { maxKeys: asText } })).toThrow(named);
    expect(() => resolveRedisCacheOptions({ operationTimeoutInMilliseconds: asText })).toThrow(
      `operationTimeoutInMilliseconds must be an integer from 1 to 600000 ${named}`,
    );
  });
});
