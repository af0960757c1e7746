import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { CaptureLogger } from '../support/capture-logger.js';
import { LeakWatch } from './support/leak-watch.js';
import { randomSecret } from './support/mutations.js';
import { isDeletion, RawBrowser, type RawReply } from './support/raw-http.js';
import { SESSION_COOKIE, startSecurityApp, TEMP_DATA_COOKIE } from './support/security-app.js';

/** For each of our cookies the response wrote (set or deleted): whether it is Secure. */
function secureFlags(reply: RawReply): Record<string, boolean> {
  return Object.fromEntries(
    reply.setCookies
      .filter((c) => c.name === SESSION_COOKIE || c.name.startsWith(TEMP_DATA_COOKIE))
      .map((c) => [`${c.name}${isDeletion(c) ? ' (deleted)' : ''}`, c.attributes.includes('Secure')]),
  );
}

describe("Secure cookies behind a proxy (securePolicy 'sameAsRequest', the default)", () => {
  const secret = randomSecret();
  const watch = new LeakWatch().secret(secret);
  const logger = new CaptureLogger();
  const apps: INestApplication[] = [];
  /** Apps by Express `trust proxy` setting. */
  const urls: Record<'trusted' | 'untrusted' | 'loopback' | 'otherProxy', string> = {
    trusted: '',
    untrusted: '',
    loopback: '',
    otherProxy: '',
  };

  beforeAll(async () => {
    const settings: [keyof typeof urls, boolean | string | undefined][] = [
      ['trusted', true],
      ['untrusted', undefined],
      ['loopback', 'loopback'],
      ['otherProxy', '10.0.0.1'], // a proxy address the test client (127.0.0.1) is not
    ];
    for (const [name, trustProxy] of settings) {
      const started = await startSecurityApp({ secrets: [secret] }, { trustProxy, logger });
      apps.push(started.app);
      urls[name] = started.url;
    }
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  /**
   * One visitor's life on `url` with these request headers: the session and TempData set, then a
   * request that reads TempData (deleting its cookie) and a logout (deleting the session cookie).
   */
  async function lifeCycle(url: string, headers: [string, string][]) {
    const b = new RawBrowser(url, (reply) => watch.reply(reply));
    const set = await b.post('/sec/put', { session: { user: 'ada' }, tempData: { Message: 'hi' } }, headers);
    const read = await b.get('/sec/take', headers);
    const logout = await b.post('/sec/logout', {}, headers);
    for (const reply of [set, read, logout]) expect(reply.status).toBe(200);
    return { ...secureFlags(set), ...secureFlags(read), ...secureFlags(logout) };
  }

  const all = (secure: boolean) => ({
    [SESSION_COOKIE]: secure,
    [TEMP_DATA_COOKIE]: secure,
    [`${TEMP_DATA_COOKIE} (deleted)`]: secure,
    // Deleted beside the single TempData cookie: a chunk an overlapping request may have written.
    [`${TEMP_DATA_COOKIE}C1 (deleted)`]: secure,
    [`${SESSION_COOKIE} (deleted)`]: secure,
  });
  const https: [string, string][] = [['X-Forwarded-Proto', 'https']];

  it('with trust proxy, X-Forwarded-Proto: https makes both cookies Secure (set and deleted)', async () => {
    expect(await lifeCycle(urls.trusted, https)).toEqual(all(true));
    expect(await lifeCycle(urls.loopback, https)).toEqual(all(true));
  });

  it('with trust proxy, X-Forwarded-Proto: http or no header leaves them not Secure (plain HTTP)', async () => {
    expect(await lifeCycle(urls.trusted, [['X-Forwarded-Proto', 'http']])).toEqual(all(false));
    expect(await lifeCycle(urls.trusted, [])).toEqual(all(false));
  });

  it('without trust proxy, a forged X-Forwarded-Proto: https does not make either cookie Secure', async () => {
    expect(await lifeCycle(urls.untrusted, https)).toEqual(all(false));
  });

  it('trusting only another proxy address, the client cannot forge X-Forwarded-Proto either', async () => {
    expect(await lifeCycle(urls.otherProxy, https)).toEqual(all(false));
  });

  it('the rotation re-sign of a session cookie follows the same rule', async () => {
    const oldSecret = randomSecret();
    watch.secret(oldSecret);
    const before = await startSecurityApp({ secrets: [oldSecret] }, { logger });
    const rotating = await startSecurityApp({ secrets: [secret, oldSecret] }, { trustProxy: true, logger });
    apps.push(before.app, rotating.app);
    const b = new RawBrowser(before.url, (reply) => watch.reply(reply));
    await b.post('/sec/put', { session: { user: 'ada' } });
    const resigned = new RawBrowser(rotating.url, (reply) => watch.reply(reply));
    resigned.jar.set(SESSION_COOKIE, b.jar.get(SESSION_COOKIE)!);
    expect(secureFlags(await resigned.get('/sec/session', https))).toEqual({ [SESSION_COOKIE]: true });
    const plain = new RawBrowser(rotating.url, (reply) => watch.reply(reply));
    plain.jar.set(SESSION_COOKIE, b.jar.get(SESSION_COOKIE)!);
    expect(secureFlags(await plain.get('/sec/session'))).toEqual({ [SESSION_COOKIE]: false });
  });

  it('no secret, session key or cookie value appears in any log line', () => {
    expect(watch.size).toBeGreaterThan(10);
    expect(watch.findLeak(logger)).toBeUndefined();
  });
});
