import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { MemorySessionStore } from 'nest-session-state';
import type { CaptureLogger } from '../support/capture-logger.js';
import { LeakWatch } from './support/leak-watch.js';
import { randomSecret } from './support/mutations.js';
import { RawBrowser, setValue } from './support/raw-http.js';
import { SESSION_COOKIE, startSecurityApp } from './support/security-app.js';

const keyOf = (cookieValue: string) => cookieValue.slice(0, cookieValue.lastIndexOf('.'));

describe('session fixation over HTTP: regenerate() at login', () => {
  const secret = randomSecret();
  const watch = new LeakWatch().secret(secret);
  const store = new MemorySessionStore();
  let app: INestApplication;
  let url: string;
  let logger: CaptureLogger;

  const browser = (cookie?: string) => {
    const b = new RawBrowser(url, (reply) => watch.reply(reply));
    if (cookie !== undefined) b.jar.set(SESSION_COOKIE, cookie);
    return b;
  };

  /** An attacker's pre-login session cookie, with something planted in it. */
  async function plantedCookie(): Promise<string> {
    const attacker = browser();
    await attacker.post('/sec/put', { session: { planted: 'by attacker' } });
    return attacker.jar.get(SESSION_COOKIE)!;
  }

  beforeAll(async () => {
    ({ app, url, logger } = await startSecurityApp({ secrets: [secret], store }));
  });
  afterAll(() => app.close());

  it("after login the planted pre-login cookie reaches none of the logged-in session's data; the post-login cookie does", async () => {
    const planted = await plantedCookie();

    // The victim's browser carries the planted cookie and logs in.
    const victim = browser(planted);
    const login = await victim.post('/sec/login', { user: 'victim' });
    expect(login.status).toBe(200);
    const issued = setValue(login, SESSION_COOKIE)!;
    expect(issued).toBeDefined();
    expect(keyOf(issued)).not.toBe(keyOf(planted));
    expect(login.headers.get('cache-control')).toEqual(['no-cache, no-store']);
    // The pre-login key is gone from the store at once, before anybody uses it again.
    expect(await store.load(keyOf(planted), 60_000)).toBeUndefined();

    await victim.post('/sec/put', { session: { card: 'VICTIM-CARD-4111' } });
    expect((await victim.get('/sec/session')).body).toEqual({
      planted: 'by attacker', // regenerate() keeps the data, under the new key
      user: 'victim',
      card: 'VICTIM-CARD-4111',
    });

    const attacker = browser(planted);
    expect((await attacker.get('/sec/session')).body).toEqual({});
    // Writing with the planted cookie right after the login is refused (its key just moved): nothing stored there.
    expect((await attacker.post('/sec/put', { session: { probe: 'x' } })).status).toBe(409);
    expect((await attacker.get('/sec/session')).body).toEqual({});
    expect(await store.load(keyOf(planted), 60_000)).toBeUndefined();
    expect((await victim.get('/sec/session')).body).toEqual({
      planted: 'by attacker',
      user: 'victim',
      card: 'VICTIM-CARD-4111',
    });
  });

  it('requests racing the login on the planted cookie never see the logged-in user', async () => {
    for (let round = 0; round < 5; round++) {
      const planted = await plantedCookie();
      const victim = browser(planted);
      const attacker = () => browser(planted);
      const racing = Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0
          ? attacker().post('/sec/put', { session: { [`probe${i}`]: 'x' } })
          : attacker().get('/sec/session'),
      );
      const [login, ...replies] = await Promise.all([
        victim.post('/sec/login', { user: 'victim' }),
        ...racing,
      ]);
      expect(login.status).toBe(200);
      for (const reply of replies) {
        expect(reply.status).toBe(200);
        expect(JSON.stringify(reply.body)).not.toContain('victim');
      }
      const after = (await attacker().get('/sec/session')).body as Record<string, string>;
      expect(after.user).toBeUndefined();
      expect((await victim.get('/sec/session')).body).toMatchObject({ user: 'victim' });
    }
  });

  it('an attacker cannot choose the key: a forged cookie is ignored and login issues a fresh random key', async () => {
    const chosenKey = randomBytes(24).toString('base64url');
    const forged = `${chosenKey}.${randomBytes(32).toString('base64url')}`;
    const victim = browser(forged);
    const login = await victim.post('/sec/login', { user: 'victim' });
    expect(login.status).toBe(200);
    const issued = setValue(login, SESSION_COOKIE)!;
    expect(keyOf(issued)).not.toBe(chosenKey);
    expect(await store.load(chosenKey, 60_000)).toBeUndefined();
    expect((await browser(forged).get('/sec/session')).body).toEqual({});
  });

  it('logout deletes the session: the post-login cookie reaches nothing afterwards', async () => {
    const victim = browser(await plantedCookie());
    await victim.post('/sec/login', { user: 'victim' });
    const loggedIn = victim.jar.get(SESSION_COOKIE)!;
    const logout = await victim.post('/sec/logout');
    expect(logout.status).toBe(200);
    expect(victim.jar.get(SESSION_COOKIE)).toBeUndefined();
    expect((await browser(loggedIn).get('/sec/session')).body).toEqual({});
  });

  it('no secret, session key or cookie value appears in any log line', () => {
    expect(watch.size).toBeGreaterThan(10);
    expect(watch.findLeak(logger)).toBeUndefined();
  });
});
