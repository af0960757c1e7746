import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { setCookies } from '../support/cookie-jar.js';
import { KeyRing } from '../../libs/session-state/src/protection/key-ring.js';
import { AuthenticatedEncryptor } from '../../libs/session-state/src/protection/authenticated-encryptor.js';
import { CookieSigner } from '../../libs/session-state/src/protection/cookie-signer.js';
import { encodeTempData } from '../../libs/session-state/src/temp-data/temp-data.value-codec.js';
import {
  Browser,
  DEFAULT_ATTRIBUTES,
  DELETE_ATTRIBUTES,
  isDeletion,
  parseSetCookie,
  SESSION_COOKIE,
  TEMP_DATA_COOKIE,
  tempDataSetCookies,
  type ParsedSetCookie,
} from './support/browser.js';
import { send, type RawResponse } from './support/http-client.js';
import { RecordingLogger, startTempDataApp } from './support/temp-data-test.app.js';

const CHUNK_SIZE = 4050;
const secret = () => randomBytes(32).toString('base64url');

/** `name=value` pairs of the TempData cookies a response wrote (deletions left out). */
function written(res: RawResponse): ParsedSetCookie[] {
  return tempDataSetCookies(res).filter((c) => !isDeletion(c));
}

/** A Cookie header carrying exactly these cookies. */
function cookieHeader(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}

/** A random base64url text of `length` characters (incompressible, like real data). */
function payload(length: number): string {
  return randomBytes(length).toString('base64url').slice(0, length);
}

describe('TempData cookie provider over HTTP', () => {
  const secrets = [secret()];
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    // 20 KB payloads: the budget raised together with the test server's header limit (64 KiB), as the README says.
    ({ app, url } = await startTempDataApp({ secrets, tempData: { maxCookieBytes: 40 * 1024 } }));
  });
  afterAll(() => app.close());

  it('a 413 for a long key names its start and length, not the whole key (a key from client input stays out of the body)', async () => {
    const key = 'k'.repeat(60_000); // within Express's body limit, past this app's 40 KiB budget
    const res = await new Browser(url).ops({ op: 'set', key, value: 'v' });
    expect(res.status).toBe(413);
    const { message } = res.body as unknown as { message: string };
    expect(message).toMatch(/^TempData value "k{80}… \(60000 characters\)" is too large/);
    expect(res.text.length).toBeLessThan(1_000);
  });

  /** The TempData cookies of a browser that stored `values`, as the response wrote them. */
  async function storedCookies(
    values: Record<string, unknown>,
  ): Promise<{ browser: Browser; res: RawResponse }> {
    const browser = new Browser(url);
    const res = await browser.ops(
      ...Object.entries(values).map(([key, value]) => ({ op: 'set' as const, key, value })),
    );
    expect(res.status).toBe(200);
    return { browser, res };
  }

  describe('the cookie', () => {
    it('is .Nest.TempData with Path=/, HttpOnly, SameSite=Lax, no Secure over http, no Expires', async () => {
      const { res } = await storedCookies({ Message: 'hello' });
      const cookies = tempDataSetCookies(res);
      expect(cookies.map((c) => [c.name, isDeletion(c)])).toEqual([
        [TEMP_DATA_COOKIE, false],
        // A chunk another request of this browser may have written meanwhile does not stay beside it.
        [`${TEMP_DATA_COOKIE}C1`, true],
      ]);
      expect(cookies[0].attributes).toEqual(DEFAULT_ATTRIBUTES);
      // TempData is not the session: storing it starts no session.
      expect(setCookies(res).some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    });

    it('is never stored by a shared cache: a response that writes or deletes it says no-cache, no-store', async () => {
      const { browser, res } = await storedCookies({ Message: 'hello' });
      expect(res.headers['cache-control']).toBe('no-cache, no-store');
      expect(res.headers.pragma).toBe('no-cache');
      const read = await browser.ops({ op: 'get', key: 'Message' }); // deletes the cookie
      expect(tempDataSetCookies(read)).toHaveLength(1);
      expect(read.headers['cache-control']).toBe('no-cache, no-store');
      // A response that writes no cookie is the app's to cache.
      const nothing = await new Browser(url).ops({ op: 'get', key: 'Message' });
      expect(setCookies(nothing)).toEqual([]);
      expect(nothing.headers['cache-control']).toBeUndefined();
    });

    it('is not readable plaintext: base64url of ciphertext that changes on every write', async () => {
      const marker = 'PLAINTEXT-MARKER-Customer-Ada';
      const values = { Message: marker, Secret: { password: 'hunter2-marker' } };
      const first = written((await storedCookies(values)).res)[0].value;
      const second = written((await storedCookies(values)).res)[0].value;
      for (const value of [first, second]) {
        expect(value).toMatch(/^[A-Za-z0-9_-]+$/);
        const bytes = Buffer.from(value, 'base64url');
        expect(bytes.toString('base64url')).toBe(value);
        for (const text of [value, bytes.toString('latin1'), bytes.toString('utf8')]) {
          expect(text).not.toContain('PLAINTEXT');
          expect(text).not.toContain('hunter2');
          expect(text).not.toContain('Message');
        }
      }
      // Random IV: the same TempData never gives the same cookie twice.
      expect(first).not.toBe(second);
    });

    it('round-trips: the next request reads the values back', async () => {
      const { browser } = await storedCookies({ Message: 'hello', Count: 2 });
      expect(await browser.run({ op: 'get', key: 'Message' }, { op: 'get', key: 'Count' })).toEqual([
        'hello',
        2,
      ]);
    });

    it('is deleted (with the same attributes) when TempData becomes empty', async () => {
      const { browser } = await storedCookies({ Message: 'hello' });
      const read = await browser.ops({ op: 'get', key: 'Message' });
      expect(read.body.results).toEqual(['hello']);
      expect(tempDataSetCookies(read).map((c) => [c.name, c.value, c.attributes])).toEqual([
        [TEMP_DATA_COOKIE, '', DELETE_ATTRIBUTES],
      ]);
      expect(browser.jar.get(TEMP_DATA_COOKIE)).toBeUndefined();
      // A request that empties TempData it never had writes nothing.
      const fresh = await new Browser(url).ops({ op: 'get', key: 'Message' });
      expect(setCookies(fresh)).toEqual([]);
    });

    it('is rewritten when a value changes and left alone when nothing changed', async () => {
      const { browser } = await storedCookies({ Message: 'hello', Other: 'other' });
      const before = browser.jar.get(TEMP_DATA_COOKIE);
      const unchanged = await browser.ops(
        { op: 'peek', key: 'Message' },
        { op: 'set', key: 'Missing', value: undefined },
      );
      expect(setCookies(unchanged)).toEqual([]);
      const changed = await browser.ops({ op: 'get', key: 'Message' });
      expect(written(changed)).toHaveLength(1);
      expect(browser.jar.get(TEMP_DATA_COOKIE)).not.toBe(before);
      expect(await browser.run({ op: 'keys' })).toEqual([['Other']]);
    });
  });

  describe('chunking (ASP.NET ChunkingCookieManager)', () => {
    it('round-trips a 20 KB payload as chunks-N plus .Nest.TempDataC1..CN, each header <= 4050 characters', async () => {
      const big = payload(20 * 1024);
      const { browser, res } = await storedCookies({ Big: big });
      const cookies = written(res);
      const count = cookies.length - 1;
      // 20 KB of data is ~27 KB encrypted and base64url: 7 chunks of at most 4050 characters.
      expect(count).toBe(7);
      expect(cookies.map((c) => c.name)).toEqual([
        TEMP_DATA_COOKIE,
        ...Array.from({ length: count }, (_, i) => `${TEMP_DATA_COOKIE}C${i + 1}`),
      ]);
      expect(cookies[0].value).toBe(`chunks-${count}`);
      for (const cookie of cookies) {
        expect(cookie.attributes).toEqual(DEFAULT_ATTRIBUTES);
        expect(cookie.header.length).toBeLessThanOrEqual(CHUNK_SIZE);
        expect(cookie.value).toMatch(/^[A-Za-z0-9_-]+$/);
      }
      // Chunks are filled to the limit, except the last one.
      for (const chunk of cookies.slice(1, -1)) expect(chunk.header.length).toBe(CHUNK_SIZE);
      expect(
        cookies
          .slice(1)
          .map((c) => c.value)
          .join(''),
      ).not.toContain(big.slice(0, 32));

      expect(await browser.run({ op: 'peek', key: 'Big' })).toEqual([big]);
      const read = await browser.ops({ op: 'get', key: 'Big' });
      expect(read.body.results).toEqual([big]);
      // Empty now: the main cookie and every chunk are deleted.
      const deletions = tempDataSetCookies(read);
      expect(deletions.map((c) => c.name)).toEqual(cookies.map((c) => c.name));
      for (const cookie of deletions) expect(cookie.attributes).toEqual(DELETE_ATTRIBUTES);
      expect(deletions.every(isDeletion)).toBe(true);
      expect(await browser.run({ op: 'keys' })).toEqual([[]]);
    });

    it('deletes the stale chunks when the value shrinks (fewer chunks, then no chunks)', async () => {
      const { browser, res } = await storedCookies({ Big: payload(20 * 1024) });
      expect(written(res)[0].value).toBe('chunks-7');

      const half = payload(10 * 1024);
      const shrunk = await browser.ops({ op: 'set', key: 'Big', value: half });
      const shrunkWritten = written(shrunk);
      expect(shrunkWritten[0]).toMatchObject({ name: TEMP_DATA_COOKIE, value: 'chunks-4' });
      expect(shrunkWritten.slice(1).map((c) => c.name)).toEqual(
        [1, 2, 3, 4].map((i) => `${TEMP_DATA_COOKIE}C${i}`),
      );
      expect(
        tempDataSetCookies(shrunk)
          .filter(isDeletion)
          .map((c) => [c.name, c.attributes]),
      ).toEqual([5, 6, 7].map((i) => [`${TEMP_DATA_COOKIE}C${i}`, DELETE_ATTRIBUTES]));
      expect(await browser.run({ op: 'peek', key: 'Big' })).toEqual([half]);

      const small = await browser.ops({ op: 'set', key: 'Big', value: 'small' });
      const smallWritten = written(small);
      expect(smallWritten).toHaveLength(1);
      expect(smallWritten[0].name).toBe(TEMP_DATA_COOKIE);
      expect(smallWritten[0].value).not.toMatch(/^chunks-/);
      expect(
        tempDataSetCookies(small)
          .filter(isDeletion)
          .map((c) => c.name),
      ).toEqual([1, 2, 3, 4].map((i) => `${TEMP_DATA_COOKIE}C${i}`));
      expect(await browser.run({ op: 'get', key: 'Big' })).toEqual(['small']);
    });

    it('grows from one cookie to chunks and back without leaving anything behind', async () => {
      const { browser } = await storedCookies({ Message: 'hello' });
      const grown = await browser.ops({ op: 'set', key: 'Big', value: payload(7000) });
      expect(written(grown)[0].value).toBe('chunks-3');
      expect(tempDataSetCookies(grown).filter(isDeletion)).toEqual([]);
      const shrunk = await browser.ops({ op: 'get', key: 'Big' }, { op: 'peek', key: 'Message' });
      expect(shrunk.body.results[1]).toBe('hello');
      expect(written(shrunk).map((c) => c.name)).toEqual([TEMP_DATA_COOKIE]);
      expect(browser.jar.header()).not.toContain(`${TEMP_DATA_COOKIE}C`);
      expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['hello']);
      expect(browser.jar.header()).toBe('');
    });
  });

  describe('bad cookies: empty TempData, the cookie deleted, never a 500', () => {
    let valid: string;
    let chunked: Record<string, string>;

    beforeAll(async () => {
      valid = written((await storedCookies({ Message: 'hello' })).res)[0].value;
      chunked = Object.fromEntries(
        written((await storedCookies({ Message: 'hello', Big: payload(20 * 1024) })).res).map((c) => [
          c.name,
          c.value,
        ]),
      );
      expect(Object.keys(chunked)).toHaveLength(8);
    });

    const flip = (text: string, at: number) =>
      text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
    const without = (cookies: Record<string, string>, name: string) =>
      Object.fromEntries(Object.entries(cookies).filter(([n]) => n !== name));
    const withChunk = (cookies: Record<string, string>, name: string, change: (v: string) => string) => ({
      ...cookies,
      [name]: change(cookies[name]),
    });

    const cases: [string, () => Record<string, string>][] = [
      [
        'tampered (one character changed)',
        () => ({ [TEMP_DATA_COOKIE]: flip(valid, Math.floor(valid.length / 2)) }),
      ],
      ['tampered authentication tag', () => ({ [TEMP_DATA_COOKIE]: flip(valid, valid.length - 3) })],
      ['truncated', () => ({ [TEMP_DATA_COOKIE]: valid.slice(0, -10) })],
      ['too short to hold a nonce and tag', () => ({ [TEMP_DATA_COOKIE]: valid.slice(0, 20) })],
      ['invalid base64url', () => ({ [TEMP_DATA_COOKIE]: 'not+base64/url==' })],
      ['percent garbage', () => ({ [TEMP_DATA_COOKIE]: '%%%%%%' })],
      ['a session cookie value', () => ({ [TEMP_DATA_COOKIE]: `${payload(32)}.${payload(43)}` })],
      ['a long run of the same character', () => ({ [TEMP_DATA_COOKIE]: 'A'.repeat(30_000) })],
      ['chunked: a chunk missing', () => without(chunked, `${TEMP_DATA_COOKIE}C2`)],
      ['chunked: the last chunk missing', () => without(chunked, `${TEMP_DATA_COOKIE}C7`)],
      ['chunked: a chunk tampered', () => withChunk(chunked, `${TEMP_DATA_COOKIE}C3`, (v) => flip(v, 100))],
      [
        'chunked: the last chunk truncated',
        () => withChunk(chunked, `${TEMP_DATA_COOKIE}C7`, (v) => v.slice(0, -5)),
      ],
      [
        'chunked: two chunks swapped',
        () => ({
          ...chunked,
          [`${TEMP_DATA_COOKIE}C1`]: chunked[`${TEMP_DATA_COOKIE}C2`],
          [`${TEMP_DATA_COOKIE}C2`]: chunked[`${TEMP_DATA_COOKIE}C1`],
        }),
      ],
      ['chunked: the count says fewer chunks', () => ({ ...chunked, [TEMP_DATA_COOKIE]: 'chunks-6' })],
      ['chunks-10000', () => ({ [TEMP_DATA_COOKIE]: 'chunks-10000', [`${TEMP_DATA_COOKIE}C1`]: valid })],
      ['chunks-10000 with all the real chunks', () => ({ ...chunked, [TEMP_DATA_COOKIE]: 'chunks-10000' })],
      ['chunks-0', () => ({ [TEMP_DATA_COOKIE]: 'chunks-0' })],
      ['chunks-abc', () => ({ [TEMP_DATA_COOKIE]: 'chunks-abc', [`${TEMP_DATA_COOKIE}C1`]: valid })],
      ['chunks- without a number', () => ({ [TEMP_DATA_COOKIE]: 'chunks-' })],
    ];

    it.each(cases)('%s', async (_label, make) => {
      const sent = make();
      const res = await send(url, 'POST', '/td/ops', {
        cookie: cookieHeader(sent),
        json: { ops: [{ op: 'get', key: 'Message' }, { op: 'keys' }] },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ results: [null, []] });
      const cookies = tempDataSetCookies(res);
      expect(cookies.map((c) => c.name).sort()).toEqual(Object.keys(sent).sort());
      for (const cookie of cookies) {
        expect(isDeletion(cookie)).toBe(true);
        expect(cookie.attributes).toEqual(DELETE_ATTRIBUTES);
      }
    });

    it('a bad cookie is replaced by new TempData written in the same request', async () => {
      const sent = { ...chunked, [TEMP_DATA_COOKIE]: 'chunks-10000' };
      const browser = new Browser(url);
      for (const [name, value] of Object.entries(sent)) browser.jar.set(name, value);
      const res = await browser.ops(
        { op: 'peek', key: 'Message' },
        { op: 'set', key: 'Message', value: 'fresh' },
      );
      expect(res.status).toBe(200);
      expect(written(res).map((c) => c.name)).toEqual([TEMP_DATA_COOKIE]);
      expect(
        tempDataSetCookies(res)
          .filter(isDeletion)
          .map((c) => c.name),
      ).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => `${TEMP_DATA_COOKIE}C${i}`));
      expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['fresh']);
    });

    it('the valid originals still work (the cases above fail because of the damage, not the setup)', async () => {
      const plain = await send(url, 'POST', '/td/ops', {
        cookie: cookieHeader({ [TEMP_DATA_COOKIE]: valid }),
        json: { ops: [{ op: 'peek', key: 'Message' }] },
      });
      expect(plain.body).toEqual({ results: ['hello'] });
      const big = await send(url, 'POST', '/td/ops', {
        cookie: cookieHeader(chunked),
        json: { ops: [{ op: 'peek', key: 'Message' }] },
      });
      expect(big.body).toEqual({ results: ['hello'] });
      expect(setCookies(plain)).toEqual([]);
      expect(setCookies(big)).toEqual([]);
    });
  });

  describe('purpose separation (key ring): session and TempData cookies do not open each other', () => {
    const ring = () => KeyRing.fromSecrets(secrets);
    const tempDataBytes = () => encodeTempData(new Map([['Message', 'forged']]));

    async function readMessage(cookie: string): Promise<RawResponse> {
      return send(url, 'POST', '/td/ops', { cookie, json: { ops: [{ op: 'get', key: 'Message' }] } });
    }

    it('TempData encrypted with the same secrets under the session purpose does not decrypt', async () => {
      const foreign = new AuthenticatedEncryptor(ring(), 'session-cookie').encrypt(tempDataBytes());
      const rejected = await readMessage(`${TEMP_DATA_COOKIE}=${foreign}`);
      expect(rejected.status).toBe(200);
      expect(rejected.body).toEqual({ results: [null] });
      expect(tempDataSetCookies(rejected).map((c) => [c.name, c.value])).toEqual([[TEMP_DATA_COOKIE, '']]);

      // Control: the same bytes under the TempData purpose are accepted.
      const own = new AuthenticatedEncryptor(ring(), 'temp-data-cookie').encrypt(tempDataBytes());
      expect((await readMessage(`${TEMP_DATA_COOKIE}=${own}`)).body).toEqual({ results: ['forged'] });
    });

    it('a cookie from another key ring does not decrypt', async () => {
      const other = KeyRing.fromSecrets([secret()]);
      const foreign = new AuthenticatedEncryptor(other, 'temp-data-cookie').encrypt(tempDataBytes());
      const rejected = await readMessage(`${TEMP_DATA_COOKIE}=${foreign}`);
      expect(rejected.body).toEqual({ results: [null] });
      expect(tempDataSetCookies(rejected).every(isDeletion)).toBe(true);
    });

    it('the real session cookie value in the TempData cookie gives empty TempData', async () => {
      const session = new Browser(url);
      await session.get('/session/counter');
      const sessionValue = session.jar.get(SESSION_COOKIE)!;
      expect(sessionValue).toBeDefined();
      const res = await readMessage(`${TEMP_DATA_COOKIE}=${sessionValue}`);
      expect(res.body).toEqual({ results: [null] });
      expect(tempDataSetCookies(res).map((c) => [c.name, c.value])).toEqual([[TEMP_DATA_COOKIE, '']]);
    });

    it('the TempData cookie value in the session cookie is not a session', async () => {
      const browser = new Browser(url);
      expect((await browser.get('/session/counter')).body).toEqual({ count: 1 });
      await browser.run({ op: 'set', key: 'Message', value: 'hello' });
      const sessionValue = browser.jar.get(SESSION_COOKIE)!;
      const tempDataValue = browser.jar.get(TEMP_DATA_COOKIE)!;

      const swapped = await send(url, 'GET', '/session/counter', {
        cookie: `${SESSION_COOKIE}=${tempDataValue}`,
      });
      expect(swapped.status).toBe(200);
      expect(swapped.body).toEqual({ count: 1 });
      // A new session was started, with a new cookie.
      const fresh = setCookies(swapped)
        .map(parseSetCookie)
        .find((c) => c.name === SESSION_COOKIE)!;
      expect(fresh.value).not.toBe(tempDataValue);
      expect(fresh.value).not.toBe(sessionValue);

      const real = await send(url, 'GET', '/session/counter', {
        cookie: `${SESSION_COOKIE}=${sessionValue}`,
      });
      expect(real.body).toEqual({ count: 2 });
    });

    it('a session key signed with the TempData purpose is not accepted as a session cookie', async () => {
      const browser = new Browser(url);
      await browser.get('/session/counter');
      const sessionValue = browser.jar.get(SESSION_COOKIE)!;
      const sessionKey = sessionValue.slice(0, sessionValue.lastIndexOf('.'));

      const forged = new CookieSigner(ring(), 'temp-data-cookie').sign(sessionKey);
      const rejected = await send(url, 'GET', '/session/counter', { cookie: `${SESSION_COOKIE}=${forged}` });
      expect(rejected.body).toEqual({ count: 1 });

      // Control: signed under the session purpose, the same key is the same session.
      const resigned = new CookieSigner(ring(), 'session-cookie').sign(sessionKey);
      expect(resigned).toBe(sessionValue);
      const accepted = await send(url, 'GET', '/session/counter', {
        cookie: `${SESSION_COOKIE}=${resigned}`,
      });
      expect(accepted.body).toEqual({ count: 2 });
    });
  });
});

describe('TempData cookie provider: options, policies, key rotation and logs', () => {
  const apps: INestApplication[] = [];
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  async function start(...args: Parameters<typeof startTempDataApp>): Promise<string> {
    const { app, url } = await startTempDataApp(...args);
    apps.push(app);
    return url;
  }

  /** Attributes of the TempData cookie written, then of the one deleting it. */
  async function attributesOf(url: string, headers: Record<string, string> = {}, name = TEMP_DATA_COOKIE) {
    const browser = new Browser(url);
    const set = await browser.post(
      '/td/ops',
      { ops: [{ op: 'set', key: 'Message', value: 'hello' }] },
      headers,
    );
    const del = await browser.post('/td/ops', { ops: [{ op: 'get', key: 'Message' }] }, headers);
    const [written] = tempDataSetCookies(set, name);
    const [deleted] = tempDataSetCookies(del, name);
    expect(written?.value).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(deleted && isDeletion(deleted)).toBe(true);
    return { written: written.attributes, deleted: deleted.attributes };
  }

  it('sameAsRequest (default): Secure on HTTPS requests (behind a trusted proxy), not on HTTP', async () => {
    const url = await start({}, { trustProxy: true });
    expect(await attributesOf(url, { 'x-forwarded-proto': 'https' })).toEqual({
      written: ['Path=/', 'HttpOnly', 'Secure', 'SameSite=Lax'],
      deleted: ['Path=/', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'HttpOnly', 'Secure', 'SameSite=Lax'],
    });
    expect(await attributesOf(url, { 'x-forwarded-proto': 'http' })).toEqual({
      written: DEFAULT_ATTRIBUTES,
      deleted: DELETE_ATTRIBUTES,
    });
  });

  it("securePolicy 'always': Secure even over HTTP", async () => {
    const url = await start({ tempData: { cookie: { securePolicy: 'always' } } });
    expect((await attributesOf(url)).written).toEqual(['Path=/', 'HttpOnly', 'Secure', 'SameSite=Lax']);
  });

  it("securePolicy 'none': never Secure, even over HTTPS", async () => {
    const url = await start({ tempData: { cookie: { securePolicy: 'none' } } }, { trustProxy: true });
    expect((await attributesOf(url, { 'x-forwarded-proto': 'https' })).written).toEqual(DEFAULT_ATTRIBUTES);
  });

  it('honours a custom name, path, SameSite and HttpOnly, for chunks and deletions too', async () => {
    const url = await start({
      tempData: { cookie: { name: 'Flash', path: '/td', sameSite: 'strict', httpOnly: false } },
    });
    expect(await attributesOf(url, {}, 'Flash')).toEqual({
      written: ['Path=/td', 'SameSite=Strict'],
      deleted: ['Path=/td', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'SameSite=Strict'],
    });
    const browser = new Browser(url);
    const big = await browser.ops({ op: 'set', key: 'Big', value: payload(4000) });
    expect(tempDataSetCookies(big, 'Flash').map((c) => [c.name, c.attributes])).toEqual([
      ['Flash', ['Path=/td', 'SameSite=Strict']],
      ['FlashC1', ['Path=/td', 'SameSite=Strict']],
      ['FlashC2', ['Path=/td', 'SameSite=Strict']],
    ]);
    expect(tempDataSetCookies(big)).toEqual([]);
  });

  it('isEssential: without consent no TempData cookie is written unless the cookie is essential', async () => {
    const hasConsent = (req: { headers: Record<string, unknown> }) => req.headers['x-consent'] === 'yes';
    const optional = await start({ hasConsent });
    const browser = new Browser(optional);
    const refused = await browser.ops({ op: 'set', key: 'Message', value: 'hello' });
    expect(refused.status).toBe(200);
    expect(setCookies(refused)).toEqual([]);
    expect(await browser.run({ op: 'peek', key: 'Message' })).toEqual([null]);
    const consented = await browser.post(
      '/td/ops',
      { ops: [{ op: 'set', key: 'Message', value: 'hello' }] },
      { 'x-consent': 'yes' },
    );
    expect(written(consented)).toHaveLength(1);

    const essential = await start({ hasConsent, tempData: { cookie: { isEssential: true } } });
    const res = await new Browser(essential).ops({ op: 'set', key: 'Message', value: 'hello' });
    expect(written(res)).toHaveLength(1);
  });

  it('key rotation: a cookie from an older secret is read and re-protected with the newest', async () => {
    const [oldSecret, newSecret] = [secret(), secret()];
    const before = await start({ secrets: [oldSecret] });
    const rotated = await start({ secrets: [newSecret, oldSecret] });
    const newOnly = await start({ secrets: [newSecret] });
    const peek = { json: { ops: [{ op: 'peek', key: 'Message' }] } };

    const browser = new Browser(before);
    await browser.run({ op: 'set', key: 'Message', value: 'hello' });
    const oldCookie = `${TEMP_DATA_COOKIE}=${browser.jar.get(TEMP_DATA_COOKIE)}`;
    expect((await send(newOnly, 'POST', '/td/ops', { cookie: oldCookie, ...peek })).body).toEqual({
      results: [null],
    });

    // Only peeked, yet rewritten: the old secret can then be dropped from the ring.
    const res = await send(rotated, 'POST', '/td/ops', { cookie: oldCookie, ...peek });
    expect(res.body).toEqual({ results: ['hello'] });
    const rewritten = written(res);
    expect(rewritten.map((c) => c.name)).toEqual([TEMP_DATA_COOKIE]);
    const newCookie = `${TEMP_DATA_COOKIE}=${rewritten[0].value}`;
    expect(newCookie).not.toBe(oldCookie);
    expect((await send(newOnly, 'POST', '/td/ops', { cookie: newCookie, ...peek })).body).toEqual({
      results: ['hello'],
    });
    // A cookie already under the newest secret is not rewritten.
    expect(setCookies(await send(rotated, 'POST', '/td/ops', { cookie: newCookie, ...peek }))).toEqual([]);
  });

  it('logs a rejected cookie once, without its value', async () => {
    const logger = new RecordingLogger();
    const url = await start({}, { logger });
    const bad = 'chunks-10000';
    const res = await send(url, 'POST', '/td/ops', {
      cookie: `${TEMP_DATA_COOKIE}=${bad}`,
      json: { ops: [{ op: 'get', key: 'Message' }] },
    });
    expect(res.status).toBe(200);
    const lines = logger.lines.filter((l) => l.message.includes('TempData cookie was ignored'));
    expect(lines).toHaveLength(1);
    expect(lines[0].message).toContain('too-many-chunks');
    const tampered = 'x'.repeat(60) + 'SECRETISH';
    await send(url, 'POST', '/td/ops', {
      cookie: `${TEMP_DATA_COOKIE}=${tampered}`,
      json: { ops: [{ op: 'get', key: 'Message' }] },
    });
    expect(logger.lines.some((l) => l.message.includes('SECRETISH'))).toBe(false);
  });
});
