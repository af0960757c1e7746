import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { CaptureLogger } from '../support/capture-logger.js';
import { LeakWatch } from './support/leak-watch.js';
import { randomSecret } from './support/mutations.js';
import { isDeletion, RawBrowser, rawRequest, type RawReply } from './support/raw-http.js';
import { SESSION_COOKIE, startSecurityApp, TEMP_DATA_COOKIE } from './support/security-app.js';

const LIMITS = { maxValueBytes: 1000, maxSessionBytes: 3000, maxKeys: 4 };
const MAX_TEMP_DATA_COOKIE = 2000;

interface SetResult {
  error: string | null;
  message?: string;
  keys: string[];
}

describe('limits over HTTP, with errors that name the key and the option', () => {
  const secret = randomSecret();
  const watch = new LeakWatch().secret(secret);
  const logger = new CaptureLogger();
  const apps: INestApplication[] = [];
  let url: string;
  let defaultsUrl: string;

  const browser = (target = url) => new RawBrowser(target, (reply) => watch.reply(reply));
  /** Stores `size` bytes under `key` in the browser's session; the route answers the error, if any. */
  const setValue = async (b: RawBrowser, key: string, size: number) => {
    const reply = await b.post(`/sec/value/${key}`, { size });
    expect(reply.status).toBe(200);
    return reply.body as SetResult;
  };
  const storedKeys = async (b: RawBrowser) => Object.keys((await b.get('/sec/session')).body as object);

  beforeAll(async () => {
    const limited = await startSecurityApp(
      { secrets: [secret], session: LIMITS, tempData: { maxCookieBytes: MAX_TEMP_DATA_COOKIE } },
      { logger },
    );
    const defaults = await startSecurityApp({ secrets: [secret] }, { logger });
    apps.push(limited.app, defaults.app);
    url = limited.url;
    defaultsUrl = defaults.url;
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  describe('session.maxValueBytes', () => {
    it('a value of exactly the limit is stored; one byte more is a SessionLimitExceededError naming the key and the option', async () => {
      const b = browser();
      expect(await setValue(b, 'exact', 1000)).toEqual({ error: null, keys: ['exact'] });
      const over = await setValue(b, 'avatar', 1001);
      expect(over.error).toBe('SessionLimitExceededError');
      expect(over.message).toContain('"avatar"');
      expect(over.message).toContain('session.maxValueBytes');
      expect(over.message).toMatch(/1001 bytes.*1000/);
      expect(over.keys).toEqual(['exact']);
      expect(await storedKeys(b)).toEqual(['exact']);
    });
  });

  describe('session.maxSessionBytes', () => {
    it('the value that would grow the session past the limit is refused; the session keeps what it had', async () => {
      const b = browser();
      for (const key of ['a', 'b', 'c']) expect((await setValue(b, key, 900)).error).toBeNull();
      // 3 x (1 + 900) = 2703 bytes; another 1 + 400 would be 3104 > 3000.
      const over = await setValue(b, 'd', 400);
      expect(over.error).toBe('SessionLimitExceededError');
      expect(over.message).toContain('"d"');
      expect(over.message).toContain('session.maxSessionBytes');
      expect(over.message).toMatch(/3104 bytes.*3000/);
      expect(await storedKeys(b)).toEqual(['a', 'b', 'c']);
      // Replacing a value counts its new size only: shrinking one makes room.
      expect((await setValue(b, 'a', 100)).error).toBeNull();
      expect((await setValue(b, 'd', 400)).error).toBeNull();
      expect(await storedKeys(b)).toEqual(['a', 'b', 'c', 'd']);
    });

    it('the limit holds across requests (the loaded session counts), not only within one', async () => {
      const b = browser();
      expect((await setValue(b, 'first', 1000)).error).toBeNull();
      expect((await setValue(b, 'second', 1000)).error).toBeNull();
      const third = await setValue(b, 'third', 1000);
      expect(third.error).toBe('SessionLimitExceededError');
      expect(third.message).toContain('session.maxSessionBytes');
    });
  });

  describe('session.maxKeys', () => {
    it('a new key beyond the limit is a SessionLimitExceededError naming the key and the option; replacing a key is not', async () => {
      const b = browser();
      for (const key of ['k1', 'k2', 'k3', 'k4']) expect((await setValue(b, key, 1)).error).toBeNull();
      const over = await setValue(b, 'k5', 1);
      expect(over.error).toBe('SessionLimitExceededError');
      expect(over.message).toContain('"k5"');
      expect(over.message).toContain('session.maxKeys');
      expect(over.message).toContain('4 keys');
      expect((await setValue(b, 'k2', 2)).error).toBeNull();
      expect(await storedKeys(b)).toEqual(['k1', 'k2', 'k3', 'k4']);
    });
  });

  describe('tempData.maxCookieBytes', () => {
    it('oversize TempData is refused at set: a 413 with its code, no cookie, and no value in the logs', async () => {
      const b = browser();
      const marker = `OVERSIZE-${randomBytes(8).toString('hex')}-`;
      const reply = await b.post('/sec/put', { tempData: { Big: marker + 'x'.repeat(1700) } });
      expect(reply.status).toBe(413);
      expect(reply.body).toMatchObject({ statusCode: 413, code: 'TEMP_DATA_TOO_LARGE' });
      expect(reply.setCookies.filter((c) => c.name.startsWith(TEMP_DATA_COOKIE))).toEqual([]);
      expect(logger.text()).not.toContain(marker);
      expect(((await b.get('/sec/state')).body as { tempData: object }).tempData).toEqual({});
    });

    it('TempData under the limit is saved and read back', async () => {
      const b = browser();
      const value = 'y'.repeat(1000);
      const reply = await b.post('/sec/put', { tempData: { Fits: value } });
      const cookie = reply.setCookies.find((c) => c.name === TEMP_DATA_COOKIE)!;
      expect(cookie.value.length).toBeLessThanOrEqual(MAX_TEMP_DATA_COOKIE);
      expect(((await b.get('/sec/state')).body as { tempData: object }).tempData).toEqual({ Fits: value });
    });

    it('on read, a cookie with more chunks than the limit allows, or longer than it, is discarded (no 500)', async () => {
      // Valid TempData from an app with the default limit (8 KiB), under the same secret: 8 KB, chunked.
      const big = browser(defaultsUrl);
      await big.post('/sec/put', { tempData: { Big: randomBytes(4500).toString('base64url') } });
      expect(big.jar.get(TEMP_DATA_COOKIE)).toMatch(/^chunks-[3-9]$/);
      const chunked: RawReply = await rawRequest(url, {
        path: '/sec/state',
        cookies: [watch.header(big.cookieHeader())],
      });
      expect(chunked.status).toBe(200);
      expect((chunked.body as { tempData: object }).tempData).toEqual({});
      expect(chunked.setCookies.length).toBeGreaterThan(0);
      expect(chunked.setCookies.every(isDeletion)).toBe(true);

      // Unchunked but longer than twice the limit (as a proxy allowing a long cookie would pass it).
      const long = await rawRequest(url, {
        path: '/sec/state',
        cookies: [watch.header(`${TEMP_DATA_COOKIE}=${randomBytes(3200).toString('base64url')}`)],
      });
      expect(long.status).toBe(200);
      expect(long.setCookies.map((c) => [c.name, isDeletion(c)])).toEqual([[TEMP_DATA_COOKIE, true]]);
    });
  });

  describe('logs', () => {
    it('carry no secret, session key or cookie value', () => {
      expect(watch.size).toBeGreaterThan(10);
      expect(logger.lines.some((l) => l.message.includes(SESSION_COOKIE))).toBe(false);
      expect(watch.findLeak(logger)).toBeUndefined();
    });
  });
});
