import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { MemorySessionStore } from 'nest-session-state';
import { AuthenticatedEncryptor } from '../../libs/session-state/src/protection/authenticated-encryptor.js';
import { CookieSigner } from '../../libs/session-state/src/protection/cookie-signer.js';
import { KeyRing } from '../../libs/session-state/src/protection/key-ring.js';
import { decodeTempData } from '../../libs/session-state/src/temp-data/temp-data.value-codec.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { LeakWatch } from './support/leak-watch.js';
import { randomSecret } from './support/mutations.js';
import { isDeletion, RawBrowser, rawRequest, setValue, type RawReply } from './support/raw-http.js';
import {
  SESSION_COOKIE,
  startSecurityApp,
  TEMP_DATA_COOKIE,
  type StateBody,
} from './support/security-app.js';

/** A secret's role in a ring given newest first: 'new' (the first), 'old' (the last), 'middle'. */
function roleOf(index: number, count: number): string {
  return index === 0 ? 'new' : index === count - 1 ? 'old' : 'middle';
}

/** Which single-secret rings of `secrets` protected a session cookie value, by role, or 'neither'. */
function signedBy(secrets: readonly string[], value: string): string {
  return (
    secrets
      .map(
        (secret, i) =>
          new CookieSigner(KeyRing.fromSecrets([secret]), 'session-cookie').verify(value) !== undefined &&
          roleOf(i, secrets.length),
      )
      .filter(Boolean)
      .join('+') || 'neither'
  );
}

/** The TempData cookie value of a jar, chunks joined. */
function tempDataValue(jar: Map<string, string>): string {
  const main = jar.get(TEMP_DATA_COOKIE)!;
  const count = /^chunks-(\d+)$/.exec(main)?.[1];
  if (count === undefined) return main;
  return Array.from({ length: Number(count) }, (_, i) => jar.get(`${TEMP_DATA_COOKIE}C${i + 1}`)).join('');
}

/** Which single-secret ring of `secrets` encrypted a TempData cookie value (by role), and what it holds. */
function encryptedBy(
  secrets: readonly string[],
  value: string,
): { by: string; values?: Record<string, unknown> } {
  for (const [i, secret] of secrets.entries()) {
    const plain = new AuthenticatedEncryptor(KeyRing.fromSecrets([secret]), 'temp-data-cookie').decrypt(
      value,
    );
    if (plain)
      return { by: roleOf(i, secrets.length), values: Object.fromEntries(decodeTempData(plain.value)) };
  }
  return { by: 'neither' };
}

// Two secrets, and three: a cookie made under the oldest of a longer ring must still be accepted.
describe.each([2, 3])(
  'key rotation end to end over HTTP, session and TempData cookies (%i secrets)',
  (count) => {
    const secrets = Array.from({ length: count }, () => randomSecret());
    const [NEW, OLD] = [secrets[0], secrets[count - 1]];
    const store = new MemorySessionStore();
    const logger = new CaptureLogger();
    const watch = new LeakWatch();
    for (const secret of secrets) watch.secret(secret);
    const apps: INestApplication[] = [];
    const urls = { old: '', rotating: '', new: '' };
    const big = randomBytes(4500).toString('base64url');
    /** Cookies made under [old]: a session and a chunked TempData cookie. */
    let before: Map<string, string>;

    const browser = (url: string, jar?: Map<string, string>) => {
      const b = new RawBrowser(url, (reply) => watch.reply(reply));
      for (const [name, value] of jar ?? []) b.jar.set(name, value);
      return b;
    };

    beforeAll(async () => {
      for (const [name, ring] of [
        ['old', [OLD]],
        ['rotating', secrets],
        ['new', [NEW]],
      ] as const) {
        const started = await startSecurityApp({ secrets: [...ring], store }, { logger });
        apps.push(started.app);
        urls[name] = started.url;
      }
      const client = browser(urls.old);
      const made = await client.post('/sec/put', {
        session: { user: 'ada' },
        tempData: { Message: 'hello', Big: big },
      });
      expect(made.status).toBe(200);
      before = new Map(client.jar);
    });
    afterAll(() => Promise.all(apps.map((app) => app.close())));

    it('the cookies made under [old] are protected by old only (chunked TempData included)', () => {
      expect(before.get(TEMP_DATA_COOKIE)).toMatch(/^chunks-\d+$/);
      expect(signedBy(secrets, before.get(SESSION_COOKIE)!)).toBe('old');
      expect(encryptedBy(secrets, tempDataValue(before))).toEqual({
        by: 'old',
        values: { Message: 'hello', Big: big },
      });
    });

    it('with [new, old] they work, and come back protected by new: the session re-signed, TempData re-encrypted', async () => {
      const client = browser(urls.rotating, before);
      // A read-only use of both: the session is re-signed, TempData rewritten although nothing changed.
      const read = await client.get('/sec/state');
      expect(read.status).toBe(200);
      expect(read.body).toEqual({
        available: true,
        session: { user: 'ada' },
        tempData: { Message: 'hello', Big: big },
      });
      const session = setValue(read, SESSION_COOKIE)!;
      expect(session).toBeDefined();
      expect(signedBy(secrets, session)).toBe('new');
      // Same session key, new signature; the response that carries it is not cacheable.
      expect(session.split('.')[0]).toBe(before.get(SESSION_COOKIE)!.split('.')[0]);
      expect(read.headers.get('cache-control')).toEqual(['no-cache, no-store']);
      expect(encryptedBy(secrets, tempDataValue(client.jar))).toEqual({
        by: 'new',
        values: { Message: 'hello', Big: big },
      });

      // Once rotated, nothing is re-sent.
      const again = await client.get('/sec/state');
      expect(again.setCookies).toEqual([]);

      // The next write (a value read, another set) is under new as well.
      const write = await client.post('/sec/put', { session: { step: '2' }, tempData: { Next: 'n' } });
      expect(write.status).toBe(200);
      expect(signedBy(secrets, client.jar.get(SESSION_COOKIE)!)).toBe('new');
      expect(encryptedBy(secrets, tempDataValue(client.jar)).by).toBe('new');
    });

    it('a session cookie under [old] used for a write on [new, old] keeps its data and is re-signed', async () => {
      const client = browser(urls.old);
      await client.post('/sec/put', { session: { user: 'grace' } });
      const old = client.jar.get(SESSION_COOKIE)!;
      const rotating = browser(urls.rotating, client.jar);
      const write = await rotating.post('/sec/put', { session: { role: 'admin' } });
      expect(signedBy(secrets, setValue(write, SESSION_COOKIE)!)).toBe('new');
      expect((await rotating.get('/sec/session')).body).toEqual({ user: 'grace', role: 'admin' });
      expect(rotating.jar.get(SESSION_COOKIE)).not.toBe(old);
    });

    it('with [new] only, the re-protected cookies still work', async () => {
      const client = browser(urls.rotating, before);
      await client.get('/sec/state');
      const after = browser(urls.new, client.jar);
      const read = await after.get('/sec/state');
      // (The session also holds what the previous test wrote under the same key.)
      expect(read.body).toEqual({
        available: true,
        session: expect.objectContaining({ user: 'ada' }),
        tempData: { Message: 'hello', Big: big },
      });
      expect(read.setCookies).toEqual([]);
    });

    it('with [new] only, cookies never re-protected are invalid: fresh session, empty TempData (deleted), no 500', async () => {
      const reply: RawReply = await rawRequest(urls.new, {
        path: '/sec/state',
        cookies: [watch.header([...before].map(([name, value]) => `${name}=${value}`).join('; '))],
      });
      watch.reply(reply);
      expect(reply.status).toBe(200);
      expect(reply.body as StateBody).toEqual({ available: true, session: {}, tempData: {} });
      // The unreadable TempData cookie and its chunks are deleted; no session cookie is written for a read.
      expect(reply.setCookies.every(isDeletion)).toBe(true);
      expect(reply.setCookies.map((c) => c.name).sort()).toEqual(
        [...before.keys()].filter((n) => n !== SESSION_COOKIE).sort(),
      );

      // A write starts a new session under a new key: the old key's data is not reached.
      const client = browser(urls.new, before);
      const write = await client.post('/sec/put', { session: { user: 'mallory' } });
      expect(write.status).toBe(200);
      const fresh = setValue(write, SESSION_COOKIE)!;
      expect(fresh.split('.')[0]).not.toBe(before.get(SESSION_COOKIE)!.split('.')[0]);
      expect((await client.get('/sec/session')).body).toEqual({ user: 'mallory' });
    });

    it('no secret, session key or cookie value appears in any log line', () => {
      expect(watch.size).toBeGreaterThan(10);
      expect(
        logger.lines.some((l) => /could not be unprotected|TempData cookie was ignored/.test(l.message)),
      ).toBe(true);
      expect(watch.findLeak(logger)).toBeUndefined();
    });
  },
);
