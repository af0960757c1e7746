import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ManualClock, type SessionModuleOptions } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { TestDatabase } from '../support/postgres/index.js';
import { cookiePair, findSetCookie, setCookies } from '../support/cookie-jar.js';

const COOKIE = '.Nest.Session';

/** A store under test: the module options that select it (expiry on `clock`) and how to clean up. */
type StoreSetup = (clock: ManualClock) => Promise<{ options: SessionModuleOptions; close(): Promise<void> }>;

const stores: [string, StoreSetup][] = [
  [
    'memory store',
    (clock) => Promise.resolve({ options: { memory: { clock } }, close: () => Promise.resolve() }),
  ],
  [
    'PostgreSQL',
    async (clock) => {
      const db = await TestDatabase.create();
      return {
        // slideSkipWindow 0: the module's "slid recently" memory runs on real time, expiry on the manual clock.
        options: { postgres: { connectionString: db.url(), clock }, session: { slideSkipWindow: 0 } },
        close: () => db.drop(),
      };
    },
  ],
];

describe.each(stores)('session behaviour over HTTP (%s)', (_name, setup) => {
  let app: INestApplication;
  let url: string;
  let close: () => Promise<void>;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    const store = await setup(clock);
    close = () => store.close();
    ({ app, url } = await startSessionApp(store.options));
  });
  afterAll(async () => {
    await app.close();
    await close();
  });

  it('writes no cookie until a value is set, and no cookie for a route that never touches the session', async () => {
    const untouched = await request(url).get('/untouched').expect(200);
    expect(setCookies(untouched)).toEqual([]);
    const readOnly = await request(url).get('/read').expect(200);
    expect(findSetCookie(readOnly, COOKIE)).toBeUndefined();
    const id = await request(url).get('/id').expect(200);
    expect(findSetCookie(id, COOKIE)).toBeUndefined();
  });

  it('sets the cookie with the ASP.NET defaults: path /, HttpOnly, SameSite=Lax, no Expires, not Secure on http', async () => {
    const res = await request(url).get('/counter').expect(200, { count: 1 });
    const cookie = findSetCookie(res, COOKIE)!;
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).not.toMatch(/Expires|Max-Age/i);
    expect(cookie).not.toMatch(/Secure/);
    expect(res.headers['cache-control']).toBe('no-cache, no-store');
    expect(res.headers['pragma']).toBe('no-cache');
  });

  it("adds no-cache, no-store to the app's Cache-Control, keeping its other directives and dropping what allows caching", async () => {
    const res = await request(url).get('/cacheable-counter').expect(200, { count: 1 });
    expect(findSetCookie(res, COOKIE)).toBeDefined();
    // no-transform keeps a compression middleware off the response (an event stream stays a stream).
    expect(res.headers['cache-control']).toBe('no-transform, no-cache, no-store');
    const again = await request(url).get('/cacheable-counter').set('Cookie', cookiePair(res, COOKIE));
    expect(again.headers['cache-control']).toBe('public, max-age=60, no-transform'); // no cookie: the app's own
  });

  it('keeps values across requests and does not resend an established cookie', async () => {
    const first = await request(url).get('/counter').expect(200, { count: 1 });
    const cookie = cookiePair(first, COOKIE);
    const second = await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    expect(findSetCookie(second, COOKIE)).toBeUndefined();
    expect(second.headers['cache-control']).toBeUndefined();
  });

  it('a plain request that carries an Upgrade: websocket header (Node hands it over as a request) has its session', async () => {
    const first = await request(url).get('/counter').set('Upgrade', 'websocket').expect(200, { count: 1 });
    const cookie = cookiePair(first, COOKIE);
    await request(url)
      .get('/counter')
      .set('Cookie', cookie)
      .set('Upgrade', 'websocket')
      .expect(200, { count: 2 });
  });

  it('does not share sessions between browsers', async () => {
    const a = cookiePair(await request(url).get('/counter'), COOKIE);
    const b = cookiePair(await request(url).get('/counter'), COOKIE);
    expect(a).not.toEqual(b);
    await request(url).get('/counter').set('Cookie', a).expect(200, { count: 2 });
    await request(url).get('/counter').set('Cookie', b).expect(200, { count: 2 });
  });

  it('keys are case-sensitive', async () => {
    const c = cookiePair(await request(url).post('/set/Name').send({ value: 'upper' }), COOKIE);
    await request(url).post('/set/name').set('Cookie', c).send({ value: 'lower' }).expect(200);
    await request(url).get('/keys').set('Cookie', c).expect(200, { Name: 'upper', name: 'lower' });
  });

  it('clear() deletes the data', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    await request(url).post('/clear').set('Cookie', c).expect(200, { keys: [] });
    await request(url)
      .get('/read')
      .set('Cookie', c)
      .expect(200)
      .expect((r) => expect(r.body.count).toBeNull());
  });

  it('idle timeout: the session expires after 20 minutes idle, each request slides it, and the expired cookie starts a new session under the same key', async () => {
    const first = await request(url).get('/counter');
    const c = cookiePair(first, COOKIE);
    clock.advance(19 * 60_000);
    await request(url).get('/counter').set('Cookie', c).expect(200, { count: 2 }); // slid
    clock.advance(19 * 60_000);
    await request(url).get('/counter').set('Cookie', c).expect(200, { count: 3 }); // still alive: 38 min after start
    clock.advance(20 * 60_000 + 1);
    const expired = await request(url).get('/counter').set('Cookie', c).expect(200, { count: 1 });
    expect(findSetCookie(expired, COOKIE)).toBeUndefined(); // same key, cookie kept
    await request(url).get('/counter').set('Cookie', c).expect(200, { count: 2 });
  });

  it('a request that only reads the session slides the idle timeout', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    clock.advance(15 * 60_000);
    await request(url)
      .get('/read')
      .set('Cookie', c)
      .expect(200)
      .expect((r) => expect(r.body.count).toBe(1));
    await new Promise((r) => setTimeout(r, 20)); // a store may slide after the response
    clock.advance(15 * 60_000); // 30 minutes after the write, 15 after the read
    await request(url).get('/counter').set('Cookie', c).expect(200, { count: 2 });
  });

  it('a value set and removed in one request is not stored, in a new session and in an established one', async () => {
    // A new session: nothing else was set, so nothing is stored and no cookie goes out.
    const fresh = await request(url).post('/set-then-remove/gone').expect(200, { keys: [] });
    expect(findSetCookie(fresh, COOKIE)).toBeUndefined();
    // An established session that already holds the key, and one that does not.
    const c = cookiePair(await request(url).post('/set/gone').send({ value: 'before' }), COOKIE);
    await request(url).post('/set/kept').set('Cookie', c).send({ value: 'kept' }).expect(200);
    await request(url)
      .post('/set-then-remove/gone')
      .set('Cookie', c)
      .expect(200, { keys: ['kept'] });
    await request(url)
      .post('/set-then-remove/other')
      .set('Cookie', c)
      .expect(200, { keys: ['kept'] });
    await request(url).get('/keys').set('Cookie', c).expect(200, { kept: 'kept' });
  });

  it('a request that never touches the session still slides the idle timeout', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    clock.advance(15 * 60_000);
    await request(url).get('/untouched').set('Cookie', c).expect(200);
    await new Promise((r) => setTimeout(r, 20)); // the slide runs after the response
    clock.advance(15 * 60_000);
    await request(url).get('/counter').set('Cookie', c).expect(200, { count: 2 });
  });

  it('session.id is random, stable within a session, and not the cookie value', async () => {
    const set = await request(url).get('/counter');
    const c = cookiePair(set, COOKIE);
    const { body: a } = await request(url).get('/id').set('Cookie', c);
    const { body: b } = await request(url).get('/id').set('Cookie', c);
    expect(a.id).toEqual(b.id);
    expect(a.id.length).toBeGreaterThanOrEqual(22);
    expect(c).not.toContain(a.id);
  });

  it('200 new sessions get 200 distinct ids: 22 base64url characters of 128 bits, every bit varying', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const { body } = await request(url).get('/id').expect(200);
      ids.push((body as { id: string }).id);
    }
    expect(new Set(ids).size).toBe(200);
    const bytes = ids.map((id) => {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const decoded = Buffer.from(id, 'base64url');
      // Canonical base64url of 16 bytes: the 4 unused low bits of the last character are zero.
      expect(decoded.toString('base64url')).toBe(id);
      return decoded;
    });
    expect(bytes.every((b) => b.length * 8 === 128)).toBe(true);
    const ones = Array.from({ length: 128 }, (_, bit) =>
      bytes.reduce((n, b) => n + ((b[bit >> 3] >> (7 - (bit & 7))) & 1), 0),
    );
    // Binomial(200, 1/2): outside [50, 150] is a 7-sigma event for a random bit; a constant bit is 0 or 200.
    expect(ones.map((n, bit) => [bit, n]).filter(([, n]) => n < 50 || n > 150)).toEqual([]);
  });

  it('commits before the response leaves for @Redirect, res.redirect(), res.send() and thrown exceptions', async () => {
    for (const [path, name, status] of [
      ['/redirect', 'redirected', 302],
      ['/res-redirect', 'res-redirected', 302],
      ['/res-send', 'res-sent', 201],
      ['/throw', 'thrown', 400],
    ] as const) {
      const res = await request(url).post(path).expect(status);
      const c = cookiePair(res, COOKIE);
      await request(url)
        .get('/read')
        .set('Cookie', c)
        .expect(200)
        .expect((r) => expect(r.body.name).toBe(name));
    }
  });

  it('setting a value for a new session after the headers left is a clear error, not a crash', async () => {
    const res = await request(url).post('/stream-flushed').expect(201);
    expect(res.text).toBe('started;SessionResponseStartedError');
  });

  it('commits a change made in the same turn as res.send(); refuses one made after the commit (SessionResponseStartedError) instead of losing it', async () => {
    const res = await request(url).post('/after-end').expect(201, 'sent');
    await request(url).get('/late-change').expect(200, { error: 'SessionResponseStartedError' });
    const { body } = await request(url).get('/keys').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(body).toEqual({ before: 'kept', 'same-turn': 'kept' });
  });

  it('a value set after res.write() still starts the session: the first write waits for the commit', async () => {
    const res = await request(url).post('/stream').expect(201);
    expect(res.text).toBe('started;no error');
    const { body } = await request(url).get('/keys').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(body.late).toBe('value');
  });

  it('a singleton service reaches the session through SessionAccessor', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    await request(url).get('/service').set('Cookie', c).expect(200, { count: 1 });
  });

  it('rejects unserialisable and oversized values at set, naming the key', async () => {
    const fn = await request(url).post('/bad/fn').expect(200);
    expect(fn.body).toMatchObject({ error: 'TypeError' });
    expect(fn.body.message).toContain('"fn"');
    expect((await request(url).post('/bad/big')).body).toMatchObject({ error: 'TypeError' });
    expect((await request(url).post('/bad/cycle')).body.message).toContain('cycle');
    const huge = await request(url).post('/bad/huge').expect(200);
    expect(huge.body).toMatchObject({ error: 'SessionLimitExceededError' });
    expect(huge.body.message).toContain('"huge"');
  });

  it('regenerate() moves the session to a new key, keeps the data, and the old key is useless', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    const res = await request(url).post('/regenerate').set('Cookie', c).expect(200);
    const next = cookiePair(res, COOKIE);
    expect(next).not.toEqual(c);
    await request(url).get('/counter').set('Cookie', next).expect(200, { count: 2 });
    await request(url)
      .get('/read')
      .set('Cookie', c)
      .expect(200)
      .expect((r) => expect(r.body.count).toBeNull());
  });

  it('abandon() deletes the data and the cookie', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    const res = await request(url).post('/abandon').set('Cookie', c).expect(200);
    expect(findSetCookie(res, COOKIE)).toMatch(/Expires=Thu, 01 Jan 1970/);
    await request(url)
      .get('/read')
      .set('Cookie', c)
      .expect(200)
      .expect((r) => expect(r.body.count).toBeNull());
  });

  it('a tampered, malformed or foreign cookie is treated as no cookie (never a 500)', async () => {
    const c = cookiePair(await request(url).get('/counter'), COOKIE);
    const value = c.slice(COOKIE.length + 1);
    const flipped = value.slice(0, 5) + (value[5] === 'A' ? 'B' : 'A') + value.slice(6);
    for (const bad of [flipped, value.slice(0, -3), 'garbage', '%%%', 'a'.repeat(5000), `${value}.extra`]) {
      await request(url).get('/counter').set('Cookie', `${COOKIE}=${bad}`).expect(200, { count: 1 });
    }
  });
});
