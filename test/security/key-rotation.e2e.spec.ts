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

const OLD = randomSecret();
const NEW = randomSecret();

/** Which single-secret ring protected a session cookie value: 'old', 'new' or neither. */
function signedBy(value: string): string {
  const verifies = (secret: string) =>
    new CookieSigner(KeyRing.fromSecrets([secret]), 'session-cookie').verify(value) !== undefined;
  return [verifies(OLD) && 'old', verifies(NEW) && 'new'].filter(Boolean).join('+') || 'neither';
}

/** The TempData cookie value of a jar, chunks joined. */
function tempDataValue(jar: Map<string, string>): string {
  const main = jar.get(TEMP_DATA_COOKIE)!;
  const count = /^chunks-(\d+)$/.exec(main)?.[1];
  if (count === undefined) return main;
  return Array.from({ length: Number(count) }, (_, i) => jar.get(`${TEMP_DATA_COOKIE}C${i + 1}`)).join('');
}

/** Which single-secret ring encrypted a TempData cookie value, and what it holds under that ring. */
function encryptedBy(value: string): { by: string; values?: Record<string, unknown> } {
  for (const [label, secret] of [
    ['old', OLD],
    ['new', NEW],
  ]) {
    const plain = new AuthenticatedEncryptor(KeyRing.fromSecrets([secret]), 'temp-data-cookie').decrypt(
      value,
    );
    if (plain) return { by: label, values: Object.fromEntries(decodeTempData(plain.value)) };
  }
  return { by: 'neither' };
}

describe('key rotation end to end over HTTP, session and TempData cookies', () => {
  const store = new MemorySessionStore();
  const logger = new CaptureLogger();
  const watch = new LeakWatch().secret(OLD).secret(NEW);
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
    for (const [name, secrets] of [
      ['old', [OLD]],
      ['rotating', [NEW, OLD]],
      ['new', [NEW]],
    ] as const) {
      const started = await startSecurityApp({ secrets: [...secrets], store }, { logger });
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
    expect(signedBy(before.get(SESSION_COOKIE)!)).toBe('old');
    expect(encryptedBy(tempDataValue(before))).toEqual({ by: 'old', values: { Message: 'hello', Big: big } });
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
    expect(signedBy(session)).toBe('new');
    // Same session key, new signature; the response that carries it is not cacheable.
    expect(session.split('.')[0]).toBe(before.get(SESSION_COOKIE)!.split('.')[0]);
    expect(read.headers.get('cache-control')).toEqual(['no-cache, no-store']);
    expect(encryptedBy(tempDataValue(client.jar))).toEqual({
      by: 'new',
      values: { Message: 'hello', Big: big },
    });

    // Once rotated, nothing is re-sent.
    const again = await client.get('/sec/state');
    expect(again.setCookies).toEqual([]);

    // The next write (a value read, another set) is under new as well.
    const write = await client.post('/sec/put', { session: { step: '2' }, tempData: { Next: 'n' } });
    expect(write.status).toBe(200);
    expect(signedBy(client.jar.get(SESSION_COOKIE)!)).toBe('new');
    expect(encryptedBy(tempDataValue(client.jar)).by).toBe('new');
  });

  it('a session cookie under [old] used for a write on [new, old] keeps its data and is re-signed', async () => {
    const client = browser(urls.old);
    await client.post('/sec/put', { session: { user: 'grace' } });
    const old = client.jar.get(SESSION_COOKIE)!;
    const rotating = browser(urls.rotating, client.jar);
    const write = await rotating.post('/sec/put', { session: { role: 'admin' } });
    expect(signedBy(setValue(write, SESSION_COOKIE)!)).toBe('new');
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
});

describe('key rotation end to end across three secrets: cookies under the oldest still work', () => {
  const [S1, S2, S3] = [randomSecret(), randomSecret(), randomSecret()];
  const labels = [
    ['s1', S1],
    ['s2', S2],
    ['s3', S3],
  ] as const;
  const store = new MemorySessionStore();
  const logger = new CaptureLogger();
  const watch = new LeakWatch().secret(S1).secret(S2).secret(S3);
  const apps: INestApplication[] = [];
  const urls = { oldest: '', ring: '', newest: '' };
  const big = randomBytes(4500).toString('base64url');
  /** Cookies made under [s3]: a session and a chunked TempData cookie. */
  let before: Map<string, string>;

  /** Which single-secret rings of s1, s2, s3 verify a session cookie value. */
  const signedBy = (value: string) =>
    labels
      .filter(([, s]) => new CookieSigner(KeyRing.fromSecrets([s]), 'session-cookie').verify(value))
      .map(([label]) => label)
      .join('+') || 'neither';
  /** Which single-secret ring of s1, s2, s3 encrypted a TempData cookie value, and what it holds. */
  const encryptedBy = (value: string): { by: string; values?: Record<string, unknown> } => {
    for (const [label, s] of labels) {
      const plain = new AuthenticatedEncryptor(KeyRing.fromSecrets([s]), 'temp-data-cookie').decrypt(value);
      if (plain) return { by: label, values: Object.fromEntries(decodeTempData(plain.value)) };
    }
    return { by: 'neither' };
  };
  const browser = (url: string, jar?: Map<string, string>) => {
    const b = new RawBrowser(url, (reply) => watch.reply(reply));
    for (const [name, value] of jar ?? []) b.jar.set(name, value);
    return b;
  };

  beforeAll(async () => {
    for (const [name, secrets] of [
      ['oldest', [S3]],
      ['ring', [S1, S2, S3]],
      ['newest', [S1]],
    ] as const) {
      const started = await startSecurityApp({ secrets: [...secrets], store }, { logger });
      apps.push(started.app);
      urls[name] = started.url;
    }
    const client = browser(urls.oldest);
    const made = await client.post('/sec/put', {
      session: { user: 'lovelace' },
      tempData: { Message: 'from s3', Big: big },
    });
    expect(made.status).toBe(200);
    before = new Map(client.jar);
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  it('the cookies made under [s3] are protected by s3 only (chunked TempData included)', () => {
    expect(before.get(TEMP_DATA_COOKIE)).toMatch(/^chunks-\d+$/);
    expect(signedBy(before.get(SESSION_COOKIE)!)).toBe('s3');
    expect(encryptedBy(tempDataValue(before))).toEqual({
      by: 's3',
      values: { Message: 'from s3', Big: big },
    });
  });

  it('with [s1, s2, s3] they work, and come back re-signed and re-encrypted under s1', async () => {
    const client = browser(urls.ring, before);
    const read = await client.get('/sec/state');
    expect(read.status).toBe(200);
    expect(read.body).toEqual({
      available: true,
      session: { user: 'lovelace' },
      tempData: { Message: 'from s3', Big: big },
    });
    const session = setValue(read, SESSION_COOKIE)!;
    expect(session).toBeDefined();
    expect(signedBy(session)).toBe('s1');
    expect(session.split('.')[0]).toBe(before.get(SESSION_COOKIE)!.split('.')[0]);
    expect(encryptedBy(tempDataValue(client.jar))).toEqual({
      by: 's1',
      values: { Message: 'from s3', Big: big },
    });
    expect((await client.get('/sec/state')).setCookies).toEqual([]);

    // With [s1] only, the re-protected cookies work and nothing is re-sent.
    const after = browser(urls.newest, client.jar);
    const next = await after.get('/sec/state');
    expect(next.body).toEqual({
      available: true,
      session: { user: 'lovelace' },
      tempData: { Message: 'from s3', Big: big },
    });
    expect(next.setCookies).toEqual([]);
  });

  it('no secret, session key or cookie value appears in any log line', () => {
    expect(watch.findLeak(logger)).toBeUndefined();
  });
});
