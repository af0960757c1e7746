/**
 * Cross-site request forgery against the sample app's forms, in Chromium. The app is on 127.0.0.1 and the attacker's
 * page on localhost: two sites. SameSite=Lax keeps the session cookie off the attacker's form post, but the post still
 * runs and the browser keeps its answer's Set-Cookie (a top-level navigation): without a check of where the post comes
 * from, a forged sign-in replaced the visitor's session with the attacker's account (login CSRF), and a forged cart or
 * customer post signed the visitor out. Once per platform; same-origin forms are covered by sample-app.browser.spec.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { cookieValue, launchChromium, SESSION_COOKIE } from './support/chromium.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess } from './support/sample-app.process.js';

let browser: Browser;
/** The attacker's site: `/?action=<url>&<field>=<value>` answers a page that posts that form as soon as it loads. */
let attacker: Server;
let attackerUrl: string;

beforeAll(async () => {
  [browser] = await Promise.all([launchChromium(), ensureBuilt()]);
  attacker = createServer((req, res) => {
    const params = new URL(req.url ?? '/', 'http://attacker').searchParams;
    const action = params.get('action') ?? '';
    params.delete('action');
    const inputs = [...params].map(([name, value]) => `<input name="${name}" value="${value}">`).join('');
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<form id="f" method="post" action="${action}">${inputs}</form><script>f.submit()</script>`);
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}`;
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => attacker?.close(resolve));
});

describe.each(SAMPLE_APP_PLATFORMS)('on %s: a form posted from another site', (platform) => {
  let app: SampleAppProcess;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    app = await SampleAppProcess.start({ env: { HTTP_ADAPTER: platform } });
    context = await browser.newContext({ baseURL: app.url });
    page = await context.newPage();
    await page.goto('/account');
    await page.fill('#user-name', 'alice');
    await Promise.all([page.waitForURL(/\/account$/), page.click('form[action="/login"] button')]);
    await page.goto('/cart');
    await page.fill('#item', 'Tea');
    await Promise.all([page.waitForURL(/\/cart$/), page.click('form.inline button[type=submit]')]);
  });

  afterAll(async () => {
    await context?.close();
    await app?.stop();
  });

  test.each([
    ['a sign-in', '/login', { user: 'mallory' }],
    ['a cart item', '/cart/add', { item: 'Forged' }],
    ['a customer', '/customers/create', { name: 'Forged' }],
    ['a preference', '/prefs/theme', { value: 'forged' }],
  ])('%s is refused (403) and the visitor keeps their session', async (_what, path, fields) => {
    const cookieBefore = await cookieValue(context, SESSION_COOKIE);
    expect(cookieBefore).toBeDefined();

    const forged = page.waitForResponse((response) => response.url() === `${app.url}${path}`);
    const query = new URLSearchParams({ action: `${app.url}${path}`, ...fields }).toString();
    await page.goto(`${attackerUrl}/?${query}`);
    expect((await forged).status()).toBe(403);

    expect(await cookieValue(context, SESSION_COOKIE)).toBe(cookieBefore);
    await page.goto('/account');
    expect(await page.locator('#user').innerText()).toBe('Signed in as alice');
    await page.goto('/cart');
    expect(await page.locator('tr.cart-line').allInnerTexts()).toEqual(['Tea\t1']);
  });

  test.each([
    ['another origin', 'http://attacker.example', 403],
    ['an opaque origin', 'null', 403],
    ['its own origin', undefined, 302],
    ['no Origin (not a browser)', '', 302],
  ])('without Sec-Fetch-Site, Origin decides: %s', async (_what, origin, status) => {
    const headers: Record<string, string> = {};
    if (origin === undefined) headers.origin = app.url;
    else if (origin) headers.origin = origin;
    const response = await fetch(`${app.url}/cart/add`, {
      method: 'POST',
      headers,
      body: new URLSearchParams({ item: 'Scone' }),
      redirect: 'manual',
    });
    expect(response.status).toBe(status);
    if (status === 403) expect(response.headers.getSetCookie()).toEqual([]);
  });
});
