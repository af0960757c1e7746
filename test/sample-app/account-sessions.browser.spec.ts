/**
 * Issue 22 in Chromium: three browsers (contexts) signed in as one user across two sample-app instances
 * sharing one Redis. One of them signs all other devices out from the Account page; the other two are
 * signed out on their next request, whichever instance it reaches.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { RedisServerProcess } from '../support/redis/index.js';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { launchChromium } from './support/chromium.js';
import { SampleAppProcess } from './support/sample-app.process.js';

describe('sample app in Chromium: sign out all other devices (two instances, one Redis)', () => {
  let browser: Browser;
  let redis: RedisServerProcess;
  let a: SampleAppProcess;
  let b: SampleAppProcess;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    // Chromium first: when it is missing this fails before a Redis is started that nothing would stop.
    browser = await launchChromium();
    [redis] = await Promise.all([RedisServerProcess.start(), ensureBuilt()]);
    const env = {
      REDIS_URL: redis.url,
      SESSION_SECRETS: randomBytes(32).toString('base64url'),
      APP_NAME: 'devices',
    };
    [a, b] = await Promise.all([SampleAppProcess.start({ env }), SampleAppProcess.start({ env })]);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await browser?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  /** A new browser (own cookies, own user agent) signed in as `user` on `app`, on its Account page. */
  async function signedIn(app: SampleAppProcess, user: string, agent: string): Promise<Page> {
    const context = await browser.newContext({ userAgent: agent });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${app.url}/account`);
    await page.fill('#user-name', user);
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/account'),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    expect(await page.locator('#user').innerText()).toBe(`Signed in as ${user}`);
    return page;
  }

  /** The Account page of `app` as `page`'s browser sees it now. */
  async function account(page: Page, app: SampleAppProcess): Promise<string> {
    const response = await page.goto(`${app.url}/account`);
    expect(response?.status()).toBe(200);
    return page.locator('#user').innerText();
  }

  test('three browsers, one user: revoke-others from one signs the other two out on their next request', async () => {
    const first = await signedIn(a, 'amy', 'Browser One');
    const second = await signedIn(b, 'amy', 'Browser Two');
    const third = await signedIn(a, 'amy', 'Browser Three');

    // Each one's Account page lists all three devices, on either instance, itself marked.
    await account(first, b);
    const rows = first.locator('tr.device');
    expect(await rows.allInnerTexts()).toEqual([
      expect.stringContaining('Browser One (this browser)'),
      expect.stringContaining('Browser Two'),
      expect.stringContaining('Browser Three'),
    ]);

    await Promise.all([
      first.waitForURL((url) => url.pathname === '/account'),
      first.getByRole('button', { name: 'Sign out all other devices' }).click(),
    ]);
    expect(await first.locator('tr.device').count()).toBe(1);
    expect(await first.locator('#user').innerText()).toBe('Signed in as amy');

    expect(await account(second, a)).toBe('You are not signed in.');
    expect(await account(third, b)).toBe('You are not signed in.');
    expect(await account(first, a)).toBe('Signed in as amy');
    const json = (await (await first.request.get(`${b.url}/account/sessions`)).json()) as {
      sessions: { current: boolean; userAgent: string }[];
    };
    expect(json.sessions).toEqual([expect.objectContaining({ current: true, userAgent: 'Browser One' })]);
  });
});
