import { Injectable, Module } from '@nestjs/common';
import type { Request as ExpressRequest } from 'express';
import type { FastifyRequest } from 'fastify';
import request from 'supertest';
import { RedisStore as ConnectRedisStore } from 'connect-redis';
import { MemoryStore as ExpressSessionMemoryStore } from 'express-session';
import { createClient as createNodeRedisClient } from 'redis';
import { Test } from '@nestjs/testing';
import {
  MemoryDistributedCache,
  MemorySessionStore,
  SessionConfigurationError,
  SessionModule,
  type Clock,
  type SessionData,
  type SessionModuleOptions,
  type SessionStore,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair, findSetCookie } from '../support/cookie-jar.js';
import { TEST_PLATFORM } from '../support/platform/test-platform.js';

const COOKIE = '.Nest.Session';
const OLD = 'Zp0eVq3wT9sXr6Yb1nKc4dLm7fHg2aJu8iOt5yWz3Q';
const NEW = 'Hq7rTk2mW9pXs4Vb6nLc1dZf8gJa3eYu5iOw0yQz7R';

async function withApp(
  options: SessionModuleOptions,
  run: (url: string) => Promise<void>,
  extra?: Parameters<typeof startSessionApp>[1],
) {
  const { app, url } = await startSessionApp(options, extra);
  try {
    await run(url);
  } finally {
    await app.close();
  }
}

describe('session cookie options', () => {
  it("securePolicy 'always' marks the cookie Secure even over http", async () => {
    await withApp({ session: { cookie: { securePolicy: 'always' } } }, async (url) => {
      expect(findSetCookie(await request(url).get('/counter'), COOKIE)).toMatch(/; Secure/);
    });
  });

  it("securePolicy 'sameAsRequest' follows the request, honouring X-Forwarded-Proto with trust proxy", async () => {
    await withApp(
      {},
      async (url) => {
        expect(findSetCookie(await request(url).get('/counter'), COOKIE)).not.toMatch(/Secure/);
        const proxied = await request(url).get('/counter').set('X-Forwarded-Proto', 'https');
        expect(findSetCookie(proxied, COOKIE)).toMatch(/; Secure/);
      },
      { trustProxy: true },
    );
  });

  it('an idle timeout or a lock TTL under a second (seconds or minutes written as milliseconds) is warned about at startup', async () => {
    const logger = new CaptureLogger();
    const short = await startSessionApp({ session: { idleTimeout: 20, lock: { ttl: 30 } } }, { logger });
    await short.app.close();
    const warned = logger.lines.filter((l) => l.message.startsWith('[DurationInMilliseconds] '));
    expect(warned.map((l) => l.level)).toEqual(['warn', 'warn']);
    expect(warned[0].message).toContain(
      'session.idleTimeout is 20 ms: durations are in milliseconds, so a session expires 20 ms after its last ' +
        'request. For 20 seconds write 20000 (20 * 1000); for 20 minutes, 1200000 (20 * 60_000).',
    );
    expect(warned[1].message).toContain('session.lock.ttl is 30 ms');
    expect(warned[1].message).toContain(
      'For 30 seconds write 30000 (30 * 1000); for 30 minutes, 1800000 (30 * 60_000).',
    );

    const quiet = new CaptureLogger();
    const second = await startSessionApp(
      { session: { idleTimeout: 1000, lock: { ttl: 1000 } } },
      { logger: quiet },
    );
    await second.app.close();
    expect(quiet.lines.filter((l) => l.message.includes('DurationInMilliseconds'))).toEqual([]);
  });

  it("sameSite 'none' over plain HTTP goes out without Secure, which browsers reject: a rate-limited warning says so", async () => {
    const logger = new CaptureLogger();
    await withApp(
      { session: { cookie: { sameSite: 'none' } } },
      async (url) => {
        for (let i = 0; i < 3; i++)
          expect(findSetCookie(await request(url).get('/counter'), COOKIE)).toMatch(/SameSite=None$/);
        const warned = () =>
          logger.lines.filter((l) => l.message.startsWith('[CookieSameSiteNoneNotSecure] '));
        expect(warned()).toHaveLength(1); // not once per request
        expect(warned()[0]).toMatchObject({ level: 'warn' });
        expect(warned()[0].message).toContain('serve the app over HTTPS');
        const before = logger.lines.length;
        const proxied = await request(url).get('/counter').set('X-Forwarded-Proto', 'https');
        expect(findSetCookie(proxied, COOKIE)).toMatch(/; Secure; SameSite=None$/);
        expect(logger.lines.slice(before).filter((l) => l.message.includes('SameSite'))).toEqual([]);
      },
      { trustProxy: true, logger },
    );
  });

  it('a __Host- cookie name over plain HTTP goes out without Secure, which browsers reject: a rate-limited warning says so', async () => {
    const logger = new CaptureLogger();
    await withApp(
      { session: { cookie: { name: '__Host-sid' } } },
      async (url) => {
        for (let i = 0; i < 3; i++)
          expect(findSetCookie(await request(url).get('/counter'), '__Host-sid')).not.toMatch(/Secure/);
        const warned = () => logger.lines.filter((l) => l.message.startsWith('[CookiePrefixNotSecure] '));
        expect(warned()).toHaveLength(1); // not once per request
        expect(warned()[0]).toMatchObject({ level: 'warn' });
        expect(warned()[0].message).toMatch(
          /^\[CookiePrefixNotSecure\] The cookie __Host-sid .* enable trust proxy/,
        );
        const before = logger.lines.length;
        const proxied = await request(url).get('/counter').set('X-Forwarded-Proto', 'https');
        expect(findSetCookie(proxied, '__Host-sid')).toMatch(/; Secure; SameSite=Lax$/);
        expect(logger.lines.slice(before).filter((l) => l.message.includes('CookiePrefix'))).toEqual([]);
      },
      { trustProxy: true, logger },
    );
  });

  it("securePolicy 'always' on a plain-HTTP request to a public host: browsers ignore the Secure cookie, a rate-limited warning says so; not from localhost, nor over HTTPS", async () => {
    const logger = new CaptureLogger();
    await withApp(
      { session: { cookie: { securePolicy: 'always' } } },
      async (url) => {
        const warned = () => logger.lines.filter((l) => l.message.startsWith('[SecureCookieOverHttp] '));
        // From loopback names, as browsers accept Secure cookies there (a developer's machine), and over HTTPS.
        for (const host of ['localhost:3000', 'app.localhost', '127.0.0.1:8080', '[::1]:3000'])
          expect(findSetCookie(await request(url).get('/counter').set('Host', host), COOKIE)).toMatch(
            /Secure/,
          );
        await request(url).get('/counter').set('Host', 'shop.example').set('X-Forwarded-Proto', 'https');
        expect(warned()).toEqual([]);
        for (let i = 0; i < 3; i++)
          expect(
            findSetCookie(await request(url).get('/counter').set('Host', 'shop.example'), COOKIE),
          ).toMatch(/; Secure;/);
        expect(warned()).toHaveLength(1); // not once per request
        expect(warned()[0]).toMatchObject({ level: 'warn' });
        expect(warned()[0].message).toMatch(
          /^\[SecureCookieOverHttp\] The cookie \.Nest\.Session goes out with Secure .* enable trust proxy/,
        );
      },
      { trustProxy: true, logger },
    );
  });

  it("securePolicy 'always' behind a proxy the app does not trust: X-Forwarded-Proto https is not warned about; a public X-Forwarded-Host over HTTP is, though Host is 127.0.0.1", async () => {
    const logger = new CaptureLogger();
    await withApp(
      { session: { cookie: { securePolicy: 'always' } } },
      async (url) => {
        const warned = () => logger.lines.filter((l) => l.message.startsWith('[SecureCookieOverHttp] '));
        // A TLS-terminating proxy: the browser used HTTPS, and the cookie is Secure whatever the app trusts.
        for (const proto of ['https', 'HTTPS', 'https, http'])
          expect(
            findSetCookie(
              await request(url).get('/counter').set('Host', 'shop.example').set('X-Forwarded-Proto', proto),
              COOKIE,
            ),
          ).toMatch(/; Secure;/);
        expect(warned()).toEqual([]); // before, a warning that browsers ignore the cookie
        // nginx's default Host is its upstream's (127.0.0.1:<port>); the browser's host is X-Forwarded-Host.
        await request(url)
          .get('/counter')
          .set('Host', '127.0.0.1:3000')
          .set('X-Forwarded-Host', 'shop.example')
          .set('X-Forwarded-Proto', 'http');
        expect(warned()).toHaveLength(1); // before, none: the loopback Host hid it
      },
      { logger },
    );
  });

  it("the TempData cookie is as strong as the session cookie: Secure and Strict when the session cookie's options say so", async () => {
    await withApp({ session: { cookie: { securePolicy: 'always', sameSite: 'strict' } } }, async (url) => {
      const res = await request(url).post('/temp/Message').send({ value: 'hi' });
      // Before, the TempData cookie went out HttpOnly; SameSite=Lax, without Secure.
      expect(findSetCookie(res, '.Nest.TempData')).toMatch(/; HttpOnly; Secure; SameSite=Strict$/);
    });
  });

  it("securePolicy 'none' never marks it Secure; name, path and sameSite are configurable", async () => {
    await withApp(
      { session: { cookie: { securePolicy: 'none', name: 'sid', path: '/app', sameSite: 'strict' } } },
      async (url) => {
        const cookie = findSetCookie(
          await request(url).get('/counter').set('X-Forwarded-Proto', 'https'),
          'sid',
        )!;
        expect(cookie).not.toMatch(/Secure/);
        expect(cookie).toMatch(/; Path=\/app/);
        expect(cookie).toMatch(/; SameSite=Strict/);
      },
      { trustProxy: true },
    );
  });

  it('domain: the cookie is set for it, and regenerate() and abandon() replace and delete it there', async () => {
    // A browser replaces or deletes a cookie only by a Set-Cookie of the same name, path and domain: without the
    // domain on the new key's cookie or the deletion, the signed-in visitor would keep the old cookie.
    const attributes = '; Path=/app; Domain=example.test; HttpOnly; SameSite=Lax';
    await withApp({ session: { cookie: { path: '/app', domain: 'example.test' } } }, async (url) => {
      const first = await request(url).get('/counter').expect(200, { count: 1 });
      expect(findSetCookie(first, COOKIE)).toMatch(new RegExp(`^${COOKIE}=[^;]+${attributes}$`));
      const moved = await request(url)
        .post('/regenerate')
        .set('Cookie', cookiePair(first, COOKIE))
        .expect(200);
      expect(findSetCookie(moved, COOKIE)).toMatch(new RegExp(`^${COOKIE}=[^;]+${attributes}$`));
      const ended = await request(url).post('/abandon').set('Cookie', cookiePair(moved, COOKIE)).expect(200);
      expect(findSetCookie(ended, COOKIE)).toBe(
        `${COOKIE}=; Path=/app; Domain=example.test; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax`,
      );
    });
  });

  it('isEssential false + consent check: no session cookie until consent; isEssential true ignores consent', async () => {
    // Typed as the platform's own request, as an app writes it (the option's parameter accepts either).
    const hasConsent =
      TEST_PLATFORM === 'fastify'
        ? (req: FastifyRequest) => req.headers.cookie?.includes('consent=yes') ?? false
        : (req: ExpressRequest) => req.get('cookie')?.includes('consent=yes') ?? false;
    await withApp({ hasConsent }, async (url) => {
      const before = await request(url).get('/counter').expect(200, { count: 1 });
      expect(findSetCookie(before, COOKIE)).toBeUndefined();
      const after = await request(url).get('/counter').set('Cookie', 'consent=yes').expect(200);
      expect(findSetCookie(after, COOKIE)).toBeDefined();
    });
    await withApp({ hasConsent, session: { cookie: { isEssential: true } } }, async (url) => {
      expect(findSetCookie(await request(url).get('/counter'), COOKIE)).toBeDefined();
    });
  });

  it.each([
    ['throws', /hasConsent threw \(consent service down\)/],
    ['returns a Promise (an async lookup)', /hasConsent returned a Promise instead of true or false/],
    ['returns the string "false"', /hasConsent returned a string instead of true or false/],
    ['returns the request (an object with cycles)', /hasConsent returned an object instead of true or false/],
  ])(
    "a hasConsent that %s is the app's bug, not a store outage: no cookie (as without consent), the page answers, logged naming the option",
    async (kind, logged) => {
      const hasConsent = (request: object): boolean => {
        if (kind === 'throws') throw new Error('consent service down');
        if (kind.startsWith('returns the request')) return request as unknown as boolean;
        return (kind.startsWith('returns a Promise')
          ? Promise.resolve(false)
          : 'false') as unknown as boolean;
      };
      const logger = new CaptureLogger();
      await withApp(
        { hasConsent },
        async (url) => {
          const res = await request(url).get('/counter').expect(200, { count: 1 });
          expect(findSetCookie(res, COOKIE)).toBeUndefined();
        },
        { logger },
      );
      const messages = logger.lines.map((l) => l.message);
      expect(messages).toContainEqual(
        expect.stringMatching(/^\[ConsentCheckFailed\] The SessionModule option /),
      );
      expect(messages).toContainEqual(expect.stringMatching(logged));
      expect(messages.filter((m) => /SessionCommitFailed|unavailable/i.test(m))).toEqual([]);
    },
  );

  it.each([{}, 5, null])(
    'memory.clock without a now() method (%p) fails startup naming the option, instead of a 503 at the first write',
    async (clock) => {
      await expect(startSessionApp({ memory: { clock: clock as unknown as Clock } })).rejects.toThrow(
        /SessionModule option memory\.clock\) must have a now\(\) method returning epoch milliseconds/,
      );
    },
  );

  it('SessionModule imported without forRoot() fails startup saying to call it (not a Nest DI error)', async () => {
    await expect(Test.createTestingModule({ imports: [SessionModule] }).compile()).rejects.toThrow(
      /SessionModule is imported without forRoot\(\): write imports: \[SessionModule\.forRoot\(\)\]/,
    );
  });

  it('an async hasConsent fails startup: it returns a Promise, not true or false', async () => {
    const lookup = async (): Promise<boolean> => (await Promise.resolve({ consent: false })).consent;
    await expect(startSessionApp({ hasConsent: lookup as unknown as () => boolean })).rejects.toThrow(
      /hasConsent is an async function: .*Make it synchronous/,
    );
  });

  it('invalid options fail at startup with the option name', async () => {
    await expect(startSessionApp({ session: { idleTimeout: 0 } })).rejects.toThrow(/session.idleTimeout/);
    await expect(
      startSessionApp({ session: { idleTimeout: 60_000, slideSkipWindow: 60_000 } }),
    ).rejects.toThrow(/session\.slideSkipWindow \(60000 ms\) must be shorter than session\.idleTimeout/);
    await expect(
      startSessionApp({ session: { cookie: { sameSite: 'none', securePolicy: 'none' } } }),
    ).rejects.toThrow(/securePolicy/);
    await expect(startSessionApp({ secrets: ['too-short'] })).rejects.toThrow(/secrets\[0\] is too weak/);
    await expect(startSessionApp({ secrets: ['a'.repeat(64)] })).rejects.toThrow(/secrets\[0\]/);
    await expect(startSessionApp({ tempData: { provider: 'nope' as 'cookie' } })).rejects.toThrow(
      /tempData.provider/,
    );
  });

  it.each([
    ['a number as store', { store: 42 }, /option store must be a SessionStore object \(got number\)/],
    [
      'an empty store',
      { store: {} },
      /option store does not implement SessionStore \(missing load, commit, refresh, remove\)/,
    ],
    [
      'a store without commit (would acknowledge every write and keep none)',
      { store: { load: () => undefined, refresh: () => undefined, remove: () => undefined } },
      /option store does not implement SessionStore \(missing commit\)/,
    ],
    [
      'a store whose tryLock is not a function',
      { store: { ...memoryStoreMethods(), tryLock: true } },
      /tryLock not a function/,
    ],
    [
      'a store whose renewLock is not a function (every renewal would fail unseen)',
      { store: { ...memoryStoreMethods(), renewLock: 'yes' } },
      /renewLock not a function/,
    ],
    [
      "express-session's MemoryStore as store",
      { store: new ExpressSessionMemoryStore() },
      /option store is an express-session store .*Use the redis option .* or postgres instead; see docs\/migrating\.md/,
    ],
    [
      "connect-redis's RedisStore as cache",
      { cache: new ConnectRedisStore({ client: createNodeRedisClient() }) },
      /option cache is an express-session store \(such as connect-redis's RedisStore/,
    ],
    [
      'session.lock over a DistributedCache (every loading request would answer 503)',
      { cache: new MemoryDistributedCache(), session: { lock: true } },
      /^SessionModule option session\.lock needs a session store that takes locks, and sessions kept in the DistributedCache given as cache cannot be locked/,
    ],
    [
      'session.lock over a store without tryLock',
      { store: memoryStoreMethods(), session: { lock: { ttl: 5000 } } },
      /session\.lock needs a session store that takes locks, and the store given as store has no tryLock\. .*or remove session\.lock\./,
    ],
    [
      'an empty cache',
      { cache: {} },
      /option cache does not implement DistributedCache \(missing get, set, refresh, remove\)/,
    ],
  ])(
    '%s fails at startup with a SessionConfigurationError that names the option and the contract',
    async (_name, options, message) => {
      const failure = startSessionApp(options as unknown as SessionModuleOptions);
      await expect(failure).rejects.toThrow(SessionConfigurationError);
      await expect(failure).rejects.toThrow(message);
    },
  );

  it.each([
    [
      'a __Host- session cookie that may go out without Secure',
      { session: { cookie: { name: '__Host-sid', securePolicy: 'none' } } },
      /session\.cookie\.name: a __Host- cookie must be Secure.*securePolicy to 'always'/,
    ],
    [
      'a __Host- session cookie with a path and a domain',
      {
        session: {
          cookie: { name: '__Host-sid', securePolicy: 'always', path: '/app', domain: 'example.com' },
        },
      },
      /session\.cookie\.name: a __Host- cookie must have path '\/' and no domain/,
    ],
    [
      'a __Host- session cookie with a path (no domain)',
      { session: { cookie: { name: '__Host-sid', securePolicy: 'always', path: '/app' } } },
      /session\.cookie\.name: a __Host- cookie must have path '\/' and no domain/,
    ],
    [
      'a __Host- session cookie with a domain (path /)',
      { session: { cookie: { name: '__Host-sid', securePolicy: 'always', domain: 'example.com' } } },
      /session\.cookie\.name: a __Host- cookie must have path '\/' and no domain/,
    ],
    [
      'a TempData cookie domain longer than a host name can be',
      { tempData: { cookie: { domain: `${`${'a'.repeat(60)}.`.repeat(5)}test` } } },
      /tempData\.cookie\.domain must be a host name, at most 253 characters/,
    ],
    [
      'a __Host- TempData cookie with a path (no domain)',
      { tempData: { cookie: { name: '__Host-td', securePolicy: 'always', path: '/app' } } },
      /tempData\.cookie\.name: a __Host- cookie must have path '\/' and no domain/,
    ],
    [
      'a __Secure- TempData cookie that may go out without Secure (any letter case)',
      { tempData: { cookie: { name: '__SECURE-td', securePolicy: 'none' } } },
      /tempData\.cookie\.name: a __Secure- cookie must be Secure/,
    ],
    [
      'httpOnly given as a string',
      { session: { cookie: { httpOnly: 'false' } } },
      /session\.cookie\.httpOnly must be true or false \(got "false", a string: pass false \(a boolean\)\)/,
    ],
    [
      'a number given as a string, as read from the environment',
      { session: { idleTimeout: '1200000' } },
      /session\.idleTimeout must be a positive number of milliseconds \(got "1200000", a string: convert it with Number\(\)\)/,
    ],
    [
      'isEssential given as a string',
      { tempData: { cookie: { isEssential: 'no' } } },
      /tempData\.cookie\.isEssential must be true or false/,
    ],
  ])('%s fails at startup naming the option and the fix', async (_name, options, message) => {
    const failure = startSessionApp(options as unknown as SessionModuleOptions);
    await expect(failure).rejects.toThrow(SessionConfigurationError);
    await expect(failure).rejects.toThrow(message);
  });

  it('a __Host- cookie as browsers keep it (Secure always, path /, no domain) starts', async () => {
    await withApp({ session: { cookie: { name: '__Host-sid', securePolicy: 'always' } } }, async (url) => {
      const res = await request(url).get('/counter').expect(200, { count: 1 });
      expect(findSetCookie(res, '__Host-sid')).toMatch(/; path=\/;.*secure/i);
    });
  });

  it('forRoot(null) and forRootAsync({}) say what the module takes, instead of a TypeError from inside Nest', () => {
    expect(() => SessionModule.forRoot(null as unknown as SessionModuleOptions)).toThrow(
      /SessionModule\.forRoot\(\) takes an options object \(got null\); call it without arguments/,
    );
    expect(() => SessionModule.forRootAsync({})).toThrow(SessionConfigurationError);
    expect(() => SessionModule.forRootAsync({})).toThrow(/needs useFactory, useClass or useExisting/);
    class Options {
      createSessionOptions() {
        return {};
      }
    }
    expect(() => SessionModule.forRootAsync({ useFactory: () => ({}), useClass: Options })).toThrow(
      /forRootAsync\(\) got useFactory and useClass: give one of them/,
    );
    // Before, an array started the module on the defaults.
    expect(() => SessionModule.forRoot([] as unknown as SessionModuleOptions)).toThrow(
      /forRoot\(\) takes an options object \(got an array\)/,
    );
  });

  it('forRootAsync refuses what it cannot use, at the call, naming the fix', async () => {
    // Before: a TypeError from inside Nest at startup ("optionsFactory[...] is not a function").
    class NotAFactory {}
    expect(() => SessionModule.forRootAsync({ useClass: NotAFactory as never })).toThrow(
      'SessionModule.forRootAsync() option useClass must be a class with a createSessionOptions() method that ' +
        'returns the options (implements SessionModuleOptionsFactory); NotAFactory has none.',
    );
    // Before: ignored (a session option put beside the factory instead of in its result; a typo).
    const misplaced = { useFactory: () => ({}), secrets: ['x'] } as never;
    expect(() => SessionModule.forRootAsync(misplaced)).toThrow(
      /forRootAsync\(\) option secrets is unknown: it takes imports, inject, useFactory.*come from the factory/,
    );
    const typo = { useFactory: () => ({}), injects: [] } as never;
    expect(() => SessionModule.forRootAsync(typo)).toThrow(
      /option injects is unknown: did you mean inject\?/,
    );
    // A factory that returns an array fails at startup, as one that returns nothing.
    const module = SessionModule.forRootAsync({ useFactory: () => [] as unknown as SessionModuleOptions });
    await expect(startSessionApp({}, { module })).rejects.toThrow(/the options factory returned an array/);
  });

  it.each([
    ['undefined (a forgotten return)', () => undefined],
    ['null, asynchronously', () => Promise.resolve(null)],
  ])(
    'a forRootAsync factory that returns %s fails at startup instead of starting on a generated key ring',
    async (_name, factory) => {
      const module = SessionModule.forRootAsync({ useFactory: factory as () => SessionModuleOptions });
      await expect(startSessionApp({}, { module })).rejects.toThrow(
        /forRootAsync\(\): the options factory returned (undefined|null); return an options object/,
      );
    },
  );

  it('isGlobal must be a boolean, through forRoot and forRootAsync', () => {
    const wrong = { isGlobal: 'no' } as unknown as SessionModuleOptions;
    expect(() => SessionModule.forRoot(wrong)).toThrow(
      /SessionModule option isGlobal must be true or false \(got "no"\)/,
    );
    expect(() =>
      SessionModule.forRootAsync({ useFactory: () => ({}), isGlobal: 1 as unknown as boolean }),
    ).toThrow(SessionConfigurationError);
    expect(() => SessionModule.forRoot({ isGlobal: false })).not.toThrow();
    // undefined (a value read from configuration) is the default, global, as for every option
    expect(SessionModule.forRoot({ isGlobal: undefined }).global).toBe(true);
    expect(SessionModule.forRoot({ isGlobal: false }).global).toBe(false);
  });

  it('a second SessionModule in one application fails at startup, naming the fix; one module imported twice is one', async () => {
    @Module({ imports: [SessionModule.forRoot({ secrets: [OLD] })] })
    class FeatureModule {}
    await expect(startSessionApp({ secrets: [OLD] }, { imports: [FeatureModule] })).rejects.toThrow(
      /SessionModule is imported more than once in this application.*Import it once, in the root module/,
    );

    const shared = SessionModule.forRoot({ secrets: [OLD] });
    @Module({ imports: [shared] })
    class SharingModule {}
    await withApp(
      {},
      async (url) => {
        expect((await request(url).get('/counter').expect(200)).body).toEqual({ count: 1 });
      },
      { module: shared, imports: [SharingModule] },
    );
  });

  it('the same through forRootAsync (a factory that returns a store that is not one)', async () => {
    const module = SessionModule.forRootAsync({
      useFactory: () => ({ store: 42 as unknown as SessionStore }),
    });
    await expect(startSessionApp({}, { module })).rejects.toThrow(
      /option store must be a SessionStore object/,
    );
  });
});

/** The four methods of a store, bound to a MemorySessionStore (an object literal, not an instance). */
function memoryStoreMethods(): Pick<SessionStore, 'load' | 'commit' | 'refresh' | 'remove'> {
  const store = new MemorySessionStore();
  return {
    load: store.load.bind(store),
    commit: store.commit.bind(store),
    refresh: store.refresh.bind(store),
    remove: store.remove.bind(store),
  };
}

describe('key rotation', () => {
  it('a cookie protected by an old secret still works and comes back protected by the newest; dropping the old secret invalidates it', async () => {
    const store = new MemorySessionStore();
    let oldCookie = '';
    await withApp({ secrets: [OLD], store }, async (url) => {
      oldCookie = cookiePair(await request(url).get('/counter'), COOKIE);
    });
    let rotated = '';
    await withApp({ secrets: [NEW, OLD], store }, async (url) => {
      const res = await request(url).get('/counter').set('Cookie', oldCookie).expect(200, { count: 2 });
      rotated = cookiePair(res, COOKIE);
      expect(rotated).not.toEqual(oldCookie);
      expect(rotated.split('.')[0]).toEqual(oldCookie.split('.')[0]); // same session key, new signature
    });
    await withApp({ secrets: [NEW], store }, async (url) => {
      await request(url).get('/counter').set('Cookie', rotated).expect(200, { count: 3 });
      await request(url).get('/counter').set('Cookie', oldCookie).expect(200, { count: 1 });
    });
  });
});

describe('stores', () => {
  it('50 concurrent requests setting different keys all persist on the memory store', async () => {
    await withApp({}, async (url) => {
      const cookie = cookiePair(await request(url).post('/set/seed'), COOKIE);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          request(url).post(`/set/k${i}`).set('Cookie', cookie).expect(200),
        ),
      );
      const { body } = await request(url).get('/keys').set('Cookie', cookie);
      expect(Object.keys(body).sort()).toEqual(
        ['seed', ...Array.from({ length: 50 }, (_, i) => `k${i}`)].sort(),
      );
    });
  });

  it('a plain DistributedCache holds each session as one record, slid by the idle timeout', async () => {
    const cache = new MemoryDistributedCache();
    const sets: unknown[] = [];
    const set = cache.set.bind(cache);
    cache.set = (key, value, options) => {
      sets.push(options);
      return set(key, value, options);
    };
    await withApp({ cache, session: { idleTimeout: 60_000 } }, async (url) => {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      expect(cache.count).toBe(1);
      expect(sets).toEqual([{ slidingExpiration: 60_000 }, { slidingExpiration: 60_000 }]);
    });
  });

  it("a DistributedCache that answers null for a missing entry (IDistributedCache's habit): a new session, not a 503", async () => {
    const cache = new MemoryDistributedCache();
    const get = cache.get.bind(cache);
    cache.get = async (key) => (await get(key)) ?? (null as unknown as undefined);
    await withApp({ cache }, async (url) => {
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
      const signed = cookie.slice(cookie.indexOf('=') + 1);
      await cache.remove(signed.slice(0, signed.lastIndexOf('.'))); // expired
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 1 });
    });
  });

  it('a custom SessionStore whose load answers a plain object: 503, and the log names the contract', async () => {
    const store: SessionStore = {
      ...new MemorySessionStore(),
      writesDeltas: true,
      throwOnError: true,
      load: () => Promise.resolve({ count: new Uint8Array([49]) } as unknown as SessionData),
      commit: () => Promise.resolve(),
      refresh: () => Promise.resolve(),
      remove: () => Promise.resolve(),
    };
    let cookie = '';
    await withApp({ secrets: [NEW] }, async (url) => {
      cookie = cookiePair(await request(url).get('/counter'), COOKIE);
    });
    const logger = new CaptureLogger();
    await withApp(
      { secrets: [NEW], store },
      async (url) => {
        await request(url).get('/counter').set('Cookie', cookie).expect(503);
      },
      { logger },
    );
    expect(logger.lines.map((l) => l.message).join('\n')).toContain(
      'SessionStore.load must answer a Map of field names to bytes (Uint8Array), or undefined when no session is ' +
        'stored (got object): see SessionStore in docs/API.md.',
    );
  });

  it('forRootAsync with useFactory and inject', async () => {
    @Injectable()
    class Config {
      readonly idle = 1000;
    }
    @Module({ providers: [Config], exports: [Config] })
    class ConfigModule {}
    const module = SessionModule.forRootAsync({
      imports: [ConfigModule],
      inject: [Config],
      useFactory: (config: Config) => ({ session: { idleTimeout: config.idle, cookie: { name: 'async' } } }),
    });
    await withApp(
      {},
      async (url) => {
        expect(findSetCookie(await request(url).get('/counter'), 'async')).toBeDefined();
      },
      { module },
    );
  });
});

describe('ioTimeout and store failures', () => {
  const hanging = (throwOnError: boolean): SessionStore => ({
    writesDeltas: true,
    throwOnError,
    load: () => new Promise(() => undefined),
    commit: () => new Promise(() => undefined),
    refresh: () => Promise.resolve(),
    remove: () => Promise.resolve(),
  });

  it('ioTimeout bounds load: with throwOnError the request fails with 503, without it the page renders without session data', async () => {
    const signed = await (async () => {
      let c = '';
      await withApp({ secrets: [NEW] }, async (url) => {
        c = cookiePair(await request(url).get('/counter'), COOKIE);
      });
      return c;
    })();
    await withApp({ secrets: [NEW], store: hanging(true), session: { ioTimeout: 200 } }, async (url) => {
      const started = Date.now();
      await request(url).get('/read').set('Cookie', signed).expect(503);
      expect(Date.now() - started).toBeLessThan(1500);
      await request(url).get('/untouched').set('Cookie', signed).expect(200);
    });
    await withApp({ secrets: [NEW], store: hanging(false), session: { ioTimeout: 200 } }, async (url) => {
      const res = await request(url).get('/read').set('Cookie', signed).expect(200);
      expect(res.body).toEqual({ available: false, keys: [], count: null, name: null });
    });
  });

  it('ioTimeout bounds commit; a failed commit is a 503 under throwOnError and logged otherwise', async () => {
    const failingCommit = (throwOnError: boolean): SessionStore => ({
      ...new MemorySessionStore(),
      writesDeltas: true,
      throwOnError,
      load: () => Promise.resolve(undefined),
      commit: () => new Promise(() => undefined),
      refresh: () => Promise.resolve(),
      remove: () => Promise.resolve(),
    });
    await withApp({ store: failingCommit(true), session: { ioTimeout: 200 } }, async (url) => {
      const started = Date.now();
      const res = await request(url).get('/counter').expect(503);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(findSetCookie(res, COOKIE)).toBeUndefined();
      await request(url).post('/res-send').expect(503); // also when the handler wrote the response itself
    });
    const logger = new CaptureLogger();
    await withApp(
      { store: failingCommit(false), session: { ioTimeout: 200 } },
      async (url) => {
        await request(url).get('/counter').expect(200, { count: 1 });
      },
      { logger },
    );
    // Without throwOnError the response goes out as written: the failure is only in the log, once.
    const failures = logger.lines.filter((l) => /Session commit failed: .*ioTimeout/.test(l.message));
    expect(failures).toHaveLength(1);
  });
});

describe('exclusive lock (opt-in)', () => {
  it('serialises overlapping requests of one session; without it they lose an update', async () => {
    const run = async (lock: boolean) => {
      let result = { final: 0, elapsed: 0 };
      await withApp({ session: { lock: lock ? { retryInterval: 10 } : false } }, async (url) => {
        const cookie = cookiePair(await request(url).post('/set/seed'), COOKIE);
        const started = Date.now();
        await Promise.all([
          request(url).get('/slow-counter').set('Cookie', cookie).expect(200),
          request(url).get('/slow-counter').set('Cookie', cookie).expect(200),
        ]);
        const elapsed = Date.now() - started;
        const { body } = await request(url).get('/read').set('Cookie', cookie);
        result = { final: body.count as number, elapsed };
      });
      return result;
    };
    const locked = await run(true);
    expect(locked.final).toBe(2);
    expect(locked.elapsed).toBeGreaterThanOrEqual(400);
    const unlocked = await run(false);
    expect(unlocked.final).toBe(1); // both read 0 and wrote 1: the lost update the lock prevents
  });
});
