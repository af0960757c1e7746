import 'reflect-metadata';
import * as crypto from 'node:crypto';
import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import type { CaptureLogger } from '../support/capture-logger.js';
import { LeakWatch } from './support/leak-watch.js';
import { randomSecret } from './support/mutations.js';
import { SESSION_COOKIE, TEMP_DATA_COOKIE } from './support/names.js';
import { RawBrowser, rawRequest, setValue, type RawReply } from './support/raw-http.js';

/*
 * node:crypto is replaced, for the library only (it is imported below, after the mock), by the real module
 * with three functions wrapped: randomFillSync records what it fills (the library draws keys, ids, tokens
 * and IVs from a pool it fills with it: protection/random-pool.ts), timingSafeEqual records what it
 * compares (and can be made to answer a forced result), and createDecipheriv records the GCM tag lengths.
 */
const randomFills: Buffer[] = [];
/** How many CSPRNG outputs hold `bytes` as a run of consecutive bytes. */
const csprngOutputsHolding = (bytes: Buffer) =>
  randomFills.filter((fill) => fill.indexOf(bytes) !== -1).length;
const comparisons: { a: Buffer; b: Buffer; equal: boolean }[] = [];
const authTagLengths: number[] = [];
let forcedComparison: boolean | undefined;

jest.unstable_mockModule('node:crypto', () => ({
  ...crypto,
  randomFillSync: <T extends NodeJS.ArrayBufferView>(buffer: T, offset?: number, size?: number): T => {
    const filled = crypto.randomFillSync(buffer, offset, size);
    randomFills.push(Buffer.from(new Uint8Array(filled.buffer, filled.byteOffset, filled.byteLength)));
    return filled;
  },
  timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    const equal = crypto.timingSafeEqual(a, b);
    comparisons.push({ a: Buffer.from(a as Uint8Array), b: Buffer.from(b as Uint8Array), equal });
    return forcedComparison ?? equal;
  },
  createDecipheriv: (...args: Parameters<typeof crypto.createDecipheriv>) => {
    // The library deciphers AES-256-GCM: a DecipherGCM, whose setAuthTag is wrapped to see the tag length.
    const decipher = crypto.createDecipheriv(...args) as crypto.DecipherGCM;
    const setAuthTag = decipher.setAuthTag.bind(decipher);
    decipher.setAuthTag = (tag: NodeJS.ArrayBufferView) => {
      authTagLengths.push(tag.byteLength);
      return setAuthTag(tag);
    };
    return decipher;
  },
}));

const { startSecurityApp } = await import('./support/security-app.js');
const { CookieSigner } = await import('../../libs/session-state/src/protection/cookie-signer.js');
const { KeyRing } = await import('../../libs/session-state/src/protection/key-ring.js');
const { startSessionApp } = await import('../support/apps/session-test.app.js');

const keyOf = (cookieValue: string) => cookieValue.slice(0, cookieValue.lastIndexOf('.'));
const tagOf = (cookieValue: string) =>
  Buffer.from(cookieValue.slice(cookieValue.lastIndexOf('.') + 1), 'base64url');

describe('session keys come from the CSPRNG; cookie verification compares in constant time', () => {
  const NEW = randomSecret();
  const OLD = randomSecret();
  const watch = new LeakWatch().secret(NEW).secret(OLD);
  let app: INestApplication;
  let url: string;
  let logger: CaptureLogger;

  const browser = () => new RawBrowser(url, (reply) => watch.reply(reply));
  const sessionOf = async (cookie: string) => {
    const reply = await rawRequest(url, {
      path: '/sec/session',
      cookies: [watch.header(`${SESSION_COOKIE}=${cookie}`)],
    });
    watch.reply(reply);
    expect(reply.status).toBe(200);
    return reply.body as Record<string, string>;
  };

  beforeAll(async () => {
    ({ app, url, logger } = await startSecurityApp({ secrets: [NEW, OLD] }));
  });
  afterAll(() => app.close());
  afterEach(() => {
    forcedComparison = undefined;
  });

  describe('session keys', () => {
    it('a new session key is the base64url of 24 consecutive bytes (192 bits) of one crypto.randomFillSync output', async () => {
      const reply = await browser().post('/sec/put', { session: { user: 'ada' } });
      const text = keyOf(setValue(reply, SESSION_COOKIE)!);
      const key = Buffer.from(text, 'base64url');
      expect(key.toString('base64url')).toBe(text);
      expect(key.length).toBe(24);
      expect(key.length * 8).toBeGreaterThanOrEqual(128);
      expect(csprngOutputsHolding(key)).toBe(1);
    });

    it('so is the key regenerate() moves a session to', async () => {
      const b = browser();
      await b.post('/sec/put', { session: { user: 'ada' } });
      const login = await b.post('/sec/login', { user: 'ada' });
      const key = Buffer.from(keyOf(setValue(login, SESSION_COOKIE)!), 'base64url');
      expect(key.length).toBe(24);
      expect(csprngOutputsHolding(key)).toBe(1);
    });

    it('every one of the 192 bits varies across 200 new sessions, and no two keys are equal', async () => {
      const keys: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const reply = await browser().post('/sec/put', { session: { n: String(i) } });
        keys.push(Buffer.from(keyOf(setValue(reply, SESSION_COOKIE)!), 'base64url'));
      }
      expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(200);
      const ones = Array.from({ length: 192 }, (_, bit) =>
        keys.reduce((n, key) => n + ((key[bit >> 3] >> (7 - (bit & 7))) & 1), 0),
      );
      // Binomial(200, 1/2): outside [50, 150] is a 7-sigma event for a random bit; a constant bit is 0 or 200.
      const stuck = ones.map((n, bit) => [bit, n]).filter(([, n]) => n < 50 || n > 150);
      expect(stuck).toEqual([]);
    });
  });

  describe('session ids', () => {
    // The security app has no route reading session.id; the session test app's GET /id does.
    let idApp: INestApplication;
    let idUrl: string;
    const newSessionId = async () => {
      const reply = await rawRequest(idUrl, { path: '/id' });
      expect(reply.status).toBe(200);
      return (reply.body as { id: string }).id;
    };

    beforeAll(async () => {
      ({ app: idApp, url: idUrl } = await startSessionApp({ secrets: [NEW] }));
    });
    afterAll(() => idApp.close());

    it('a new session.id is the base64url of 16 consecutive bytes (128 bits) of one crypto.randomFillSync output, independent of the key', async () => {
      for (let i = 0; i < 20; i++) {
        const text = await newSessionId();
        const id = Buffer.from(text, 'base64url');
        expect(id.toString('base64url')).toBe(text);
        expect(id.length * 8).toBe(128);
        expect(csprngOutputsHolding(id)).toBe(1);
      }
    });

    it('the id of an established session is stored, and is not drawn from the bytes of its key', async () => {
      const b = new RawBrowser(idUrl, (reply) => watch.reply(reply));
      const set = await b.post('/set/user', { value: 'ada' });
      expect(set.status).toBe(200);
      const key = Buffer.from(keyOf(b.jar.get(SESSION_COOKIE)!), 'base64url');
      const first = (await b.get('/id')).body as { id: string };
      const again = (await b.get('/id')).body as { id: string };
      expect(again.id).toBe(first.id);
      const id = Buffer.from(first.id, 'base64url');
      expect(csprngOutputsHolding(id)).toBe(1);
      expect(key.indexOf(id.subarray(0, 8))).toBe(-1);
    });
  });

  describe('cookie verification', () => {
    it('compares the HMAC tag with crypto.timingSafeEqual on two 32-byte buffers, trying each secret, newest first', async () => {
      // A session signed by the older secret: the ring compares under NEW (no match), then OLD (match).
      const oldCookie = new CookieSigner(KeyRing.fromSecrets([OLD]), 'session-cookie').sign('k'.repeat(32));
      comparisons.length = 0;
      await sessionOf(oldCookie);
      expect(comparisons.map((c) => [c.a.length, c.b.length, c.equal])).toEqual([
        [32, 32, false],
        [32, 32, true],
      ]);
      // The given tag is one side of each comparison, the computed HMAC the other.
      for (const c of comparisons) expect(c.b.equals(tagOf(oldCookie))).toBe(true);
    });

    it('the comparison alone decides: forced unequal, a valid cookie is rejected; forced equal, a forged tag is accepted', async () => {
      const b = browser();
      await b.post('/sec/put', { session: { user: 'ada' } });
      const valid = b.jar.get(SESSION_COOKIE)!;
      expect(await sessionOf(valid)).toEqual({ user: 'ada' });

      // Verified cookies are remembered by the signer (only after a full check), so take the same
      // session key signed under the ring's older secret: valid, and never seen by the app before.
      const validUnderOld = new CookieSigner(KeyRing.fromSecrets([OLD]), 'session-cookie').sign(keyOf(valid));
      forcedComparison = false;
      expect(await sessionOf(validUnderOld)).toEqual({});
      forcedComparison = undefined;
      expect(await sessionOf(validUnderOld)).toEqual({ user: 'ada' });

      // A tag nobody computed, of the right length and encoding: only timingSafeEqual stands in its way.
      const forged = `${keyOf(valid)}.${crypto.randomBytes(32).toString('base64url')}`;
      forcedComparison = undefined;
      expect(await sessionOf(forged)).toEqual({});
      forcedComparison = true;
      expect(await sessionOf(forged)).toEqual({ user: 'ada' });
    });

    it('malformed cookies are rejected before any comparison, so timingSafeEqual never sees unequal lengths', async () => {
      const valid = new CookieSigner(KeyRing.fromSecrets([NEW]), 'session-cookie').sign('k'.repeat(32));
      const tag = valid.slice(valid.lastIndexOf('.') + 1);
      comparisons.length = 0;
      for (const bad of [
        `${'k'.repeat(32)}.${tag.slice(1)}`,
        `${'k'.repeat(32)}.${tag}A`,
        `${'k'.repeat(32)}.${tag.slice(0, -1)}B`, // non-canonical last character
        `${'k'.repeat(32)}.${Buffer.from(tag, 'base64url').toString('base64')}`,
        `${'k'.repeat(300)}.${tag}`,
        'k'.repeat(76),
      ]) {
        expect(await sessionOf(bad)).toEqual({});
      }
      expect(comparisons).toEqual([]);
    });

    it('a tampered tag of the right length is compared under every secret and rejected', async () => {
      const b = browser();
      await b.post('/sec/put', { session: { user: 'ada' } });
      const valid = b.jar.get(SESSION_COOKIE)!;
      const tampered = Buffer.from(tagOf(valid));
      tampered[0] ^= 0x80;
      comparisons.length = 0;
      expect(await sessionOf(`${keyOf(valid)}.${tampered.toString('base64url')}`)).toEqual({});
      expect(comparisons.map((c) => [c.a.length, c.b.length, c.equal])).toEqual([
        [32, 32, false],
        [32, 32, false],
      ]);
    });

    it('TempData is authenticated by AES-GCM with the full 16-byte tag, not a truncated one', async () => {
      const b = browser();
      await b.post('/sec/put', { tempData: { Message: 'hello' } });
      authTagLengths.length = 0;
      const reply: RawReply = await b.get('/sec/state');
      expect((reply.body as { tempData: object }).tempData).toEqual({ Message: 'hello' });
      expect(authTagLengths).toEqual([16]);
      // A cookie shorter than version + IV + tag never reaches the decipher.
      authTagLengths.length = 0;
      await rawRequest(url, { path: '/sec/state', cookies: [`${TEMP_DATA_COOKIE}=${'A'.repeat(38)}`] });
      expect(authTagLengths).toEqual([]);
    });
  });

  describe('logs', () => {
    it('carry no secret, session key or cookie value', () => {
      expect(watch.size).toBeGreaterThan(200);
      expect(watch.findLeak(logger)).toBeUndefined();
    });
  });
});
