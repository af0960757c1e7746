/**
 * The sample app in a real browser (Debian's Chromium driven by playwright-core): the seed's pages
 * (session Name/Age, the isVerified request item, the customers TempData flow with Peek and Keep),
 * the cart, login/logout, isolation between browsers, the JSON endpoints. Every suite runs once per
 * platform (HTTP_ADAPTER=express and fastify) with one Chromium for all.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { cookieValue, launchChromium, SESSION_COOKIE, TEMPDATA_COOKIE } from './support/chromium.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess } from './support/sample-app.process.js';

let browser: Browser;

beforeAll(async () => {
  [browser] = await Promise.all([launchChromium(), ensureBuilt()]);
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
});

/** The text of the page's `<main>` (what a person reads, without nav and footer). */
async function mainText(page: Page): Promise<string> {
  return page.locator('main').innerText();
}

/** Opens `path`, failing on anything but 200. */
async function open(page: Page, path: string): Promise<Response> {
  const response = await page.goto(path);
  expect(response?.status()).toBe(200);
  return response!;
}

/** Submits the form that holds `button` and waits for the page it leads to. */
async function submit(page: Page, buttonName: string, expectedPath: string): Promise<void> {
  await Promise.all([
    page.waitForURL((url) => url.pathname === expectedPath),
    page.getByRole('button', { name: buttonName, exact: true }).click(),
  ]);
}

async function addToCart(page: Page, item: string): Promise<void> {
  await open(page, '/cart');
  await page.fill('#item', item);
  await submit(page, 'Add', '/cart');
}

async function cartLines(page: Page): Promise<string[]> {
  await open(page, '/cart');
  return page.locator('tr.cart-line').allInnerTexts();
}

async function jsonOf(page: Page, path: string): Promise<unknown> {
  const response = await open(page, path);
  expect(response.headers()['content-type']).toMatch(/application\/json/);
  return response.json();
}

describe.each(SAMPLE_APP_PLATFORMS)('on %s', (platform) => {
  describe('sample app in Chromium (memory store, cookie TempData)', () => {
    let app: SampleAppProcess;
    let context: BrowserContext;
    let page: Page;

    beforeAll(async () => {
      app = await SampleAppProcess.start({ env: { HTTP_ADAPTER: platform } });
    });

    afterAll(async () => {
      await app?.stop();
    });

    beforeEach(async () => {
      context = await browser.newContext({ baseURL: app.url });
      page = await context.newPage();
    });

    afterEach(async () => {
      await context?.close();
    });

    test('the index shows Name, Age and Verified, and keeps them across reloads', async () => {
      const first = await open(page, '/');
      expect((await first.allHeaders())['set-cookie']).toContain(`${SESSION_COOKIE}=`);
      const cookie = await cookieValue(context, SESSION_COOKIE);
      expect(cookie).toBeTruthy();
      const text = await mainText(page);
      expect(text).toContain('Name: The Doctor');
      expect(text).toContain('Age: 73');
      expect(text).toContain('Verified: true');
      expect(await page.locator('h1').innerText()).toBe('Session state');
      const sessionId = await page.locator('#session-id').innerText();

      for (let i = 0; i < 2; i++) {
        const again = await page.reload();
        expect(again?.status()).toBe(200);
        // An established session's cookie is not sent again.
        expect((await again!.allHeaders())['set-cookie']).toBeUndefined();
        const reloaded = await mainText(page);
        expect(reloaded).toContain('Name: The Doctor');
        expect(reloaded).toContain('Age: 73');
        expect(reloaded).toContain('Verified: true');
        expect(await page.locator('#session-id').innerText()).toBe(sessionId);
        expect(await cookieValue(context, SESSION_COOKIE)).toBe(cookie);
      }
    });

    test('/about touches no state: no Set-Cookie, no cookie in the browser', async () => {
      const response = await open(page, '/about');
      expect((await response.allHeaders())['set-cookie']).toBeUndefined();
      expect(await context.cookies()).toEqual([]);
      expect(await mainText(page)).toContain('Verified: true');
      await page.reload();
      expect(await context.cookies()).toEqual([]);
    });

    test('every page is reachable from the nav, and its footer names the platform', async () => {
      await open(page, '/about');
      const links = await page.locator('nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      expect(links).toEqual(
        expect.arrayContaining([
          '/',
          '/about',
          '/customers',
          '/customers/create',
          '/customers/peek',
          '/customers/keep',
          '/cart',
          '/prefs/edit',
          '/account',
          '/counter',
        ]),
      );
      for (const href of links) {
        const response = await page.goto(href);
        expect(response?.status()).toBe(200);
        if (href !== '/counter') {
          // HTML pages render in standards mode (the layout starts with <!doctype html>).
          expect(await page.evaluate('document.compatMode')).toBe('CSS1Compat');
          expect(await page.locator('h1').count()).toBe(1);
          expect(await page.locator('footer #platform').innerText()).toBe(platform);
        }
      }
    });

    test('the cart grows with each item added through the form', async () => {
      expect(await cartLines(page)).toEqual([]);
      await addToCart(page, 'Tea');
      expect(await page.locator('#total').innerText()).toBe('1');
      await addToCart(page, 'Jelly babies');
      await addToCart(page, 'Tea');
      // One-click suggestion buttons are forms too.
      await submit(page, '+ Biscuits', '/cart');
      const lines = await cartLines(page);
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/Tea\s+2/);
      expect(lines[1]).toMatch(/Jelly babies\s+1/);
      expect(lines[2]).toMatch(/Biscuits\s+1/);
      expect(await page.locator('#total').innerText()).toBe('4');
      await page.reload();
      expect(await page.locator('tr.cart-line').count()).toBe(3);
    });

    test('login changes the session cookie value and keeps the data; logout ends the session', async () => {
      await open(page, '/');
      await addToCart(page, 'Tea');
      const before = await cookieValue(context, SESSION_COOKIE);
      expect(before).toBeTruthy();

      await open(page, '/account');
      expect(await page.locator('#user').innerText()).toBe('You are not signed in.');
      await page.fill('#user-name', 'Clara');
      await submit(page, 'Sign in', '/account');
      expect(await page.locator('#user').innerText()).toBe('Signed in as Clara');
      const afterLogin = await cookieValue(context, SESSION_COOKIE);
      expect(afterLogin).toBeTruthy();
      expect(afterLogin).not.toBe(before);
      // The data moved with the session.
      expect(await cartLines(page)).toEqual([expect.stringMatching(/Tea\s+1/)]);
      await open(page, '/');
      expect(await mainText(page)).toContain('Name: The Doctor');

      // The key from before the login is worthless now (session fixation defence).
      const planted = await browser.newContext({ baseURL: app.url });
      try {
        await planted.addCookies([{ name: SESSION_COOKIE, value: before!, url: app.url }]);
        const plantedPage = await planted.newPage();
        expect(await cartLines(plantedPage)).toEqual([]);
        await open(plantedPage, '/account');
        expect(await plantedPage.locator('#user').innerText()).toBe('You are not signed in.');
      } finally {
        await planted.close();
      }

      await open(page, '/account');
      await submit(page, 'Sign out', '/account');
      expect(await page.locator('#user').innerText()).toBe('You are not signed in.');
      expect(await cookieValue(context, SESSION_COOKIE)).toBeUndefined();
      expect(await page.locator('#session-state').innerText()).toBe('no session (nothing stored)');
      expect(await cartLines(page)).toEqual([]);

      // Replaying the cookie of the ended session finds nothing either.
      const replay = await browser.newContext({ baseURL: app.url });
      try {
        await replay.addCookies([{ name: SESSION_COOKIE, value: afterLogin!, url: app.url }]);
        const replayPage = await replay.newPage();
        await open(replayPage, '/account');
        expect(await replayPage.locator('#user').innerText()).toBe('You are not signed in.');
        expect(await cartLines(replayPage)).toEqual([]);
      } finally {
        await replay.close();
      }
    });

    test('two browser contexts never share a session', async () => {
      const other = await browser.newContext({ baseURL: app.url });
      try {
        const otherPage = await other.newPage();
        await Promise.all([open(page, '/'), open(otherPage, '/')]);
        const [mine, theirs] = [
          await cookieValue(context, SESSION_COOKIE),
          await cookieValue(other, SESSION_COOKIE),
        ];
        expect(mine).toBeTruthy();
        expect(theirs).toBeTruthy();
        expect(mine).not.toBe(theirs);
        expect(await page.locator('#session-id').innerText()).not.toBe(
          await otherPage.locator('#session-id').innerText(),
        );

        await addToCart(page, 'Sonic screwdriver');
        await open(page, '/account');
        await page.fill('#user-name', 'Rose');
        await submit(page, 'Sign in', '/account');

        expect(await cartLines(otherPage)).toEqual([]);
        await open(otherPage, '/account');
        expect(await otherPage.locator('#user').innerText()).toBe('You are not signed in.');
        expect(await jsonOf(otherPage, '/counter')).toEqual({ count: 1 });
        expect(await jsonOf(page, '/counter')).toEqual({ count: 1 });
      } finally {
        await other.close();
      }
    });

    test('/counter returns JSON that increments per session', async () => {
      expect(await jsonOf(page, '/counter')).toEqual({ count: 1 });
      expect(await jsonOf(page, '/counter')).toEqual({ count: 2 });
      // The context's request API shares the browser's cookies.
      const response = await context.request.get('/counter');
      expect(await response.json()).toEqual({ count: 3 });
      expect(await jsonOf(page, '/counter')).toEqual({ count: 4 });
    });

    test('/prefs holds every key after concurrent POST /prefs/:key requests with the browser cookie', async () => {
      await open(page, '/');
      const cookie = await cookieValue(context, SESSION_COOKIE);
      const keys = Array.from({ length: 24 }, (_, i) => `key${i}`);
      const responses = await Promise.all(
        keys.map((key) =>
          fetch(`${app.url}/prefs/${key}`, {
            method: 'POST',
            headers: { cookie: `${SESSION_COOKIE}=${cookie}` },
            body: new URLSearchParams({ value: `value of ${key}` }),
          }),
        ),
      );
      for (const response of responses) {
        expect(response.status).toBe(200);
        expect(response.headers.get('set-cookie')).toBeNull();
        await response.arrayBuffer();
      }
      const expected = Object.fromEntries(keys.map((key) => [key, `value of ${key}`]));
      expect(await jsonOf(page, '/prefs')).toEqual(expected);

      // The HTML form posts to the same route and lands back on the page.
      await open(page, '/prefs/edit');
      await page.selectOption('#pref-theme', 'dark');
      await page.locator('form[action="/prefs/theme"] button').click();
      await page.waitForURL((url) => url.pathname === '/prefs/edit');
      expect(await page.locator('#pref-theme').inputValue()).toBe('dark');
      expect(await jsonOf(page, '/prefs')).toEqual({ ...expected, theme: 'dark' });
    });
  });

  describe.each(['cookie', 'session'] as const)(
    'TempData in the browser (TEMPDATA_PROVIDER=%s)',
    (provider) => {
      let app: SampleAppProcess;
      let context: BrowserContext;
      let page: Page;

      beforeAll(async () => {
        app = await SampleAppProcess.start({ env: { TEMPDATA_PROVIDER: provider, HTTP_ADAPTER: platform } });
      });

      afterAll(async () => {
        await app?.stop();
      });

      beforeEach(async () => {
        context = await browser.newContext({ baseURL: app.url });
        page = await context.newPage();
      });

      afterEach(async () => {
        await context?.close();
      });

      const LANDING = { index: '/customers', peek: '/customers/peek', keep: '/customers/keep' } as const;

      /** Fills and posts the create form; `then` picks the page the redirect leads to (default the index). */
      async function createCustomer(name: string, then: keyof typeof LANDING = 'index'): Promise<void> {
        await open(page, '/customers/create');
        await page.fill('#name', name);
        await page.check(`#then-${then}`);
        const [post] = await Promise.all([
          page.waitForResponse(
            (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/customers/create',
          ),
          submit(page, 'Save', LANDING[then]),
        ]);
        expect(post.status()).toBe(302);
        expect(post.headers()['location']).toBe(LANDING[then]);
        const setCookie = (await post.allHeaders())['set-cookie'] ?? '';
        // The message travels in the encrypted TempData cookie, or in the session.
        if (provider === 'cookie') expect(setCookie).toContain(`${TEMPDATA_COOKIE}=`);
        else expect(setCookie).not.toContain(`${TEMPDATA_COOKIE}=`);
      }

      async function message(target: Page = page): Promise<string> {
        return target.locator('#message').innerText();
      }

      test('create a customer, land on /customers, see the message once', async () => {
        await createCustomer('Ada Lovelace');
        expect(new URL(page.url()).pathname).toBe('/customers');
        expect(await message()).toBe('Message: Customer Ada Lovelace added');
        expect(await page.locator('table').innerText()).toContain('Ada Lovelace');

        await page.reload();
        expect(await message()).toMatch(/^No message in TempData/);
        expect(await page.locator('table').innerText()).toContain('Ada Lovelace');

        const names = (await context.cookies()).map((c) => c.name);
        // The cookie provider deletes its cookie once TempData is empty; the session provider never writes one.
        expect(names).not.toContain(TEMPDATA_COOKIE);
        if (provider === 'session') expect(names).toContain(SESSION_COOKIE);
      });

      test('the peek and keep pages keep the message while navigating between them', async () => {
        const nav = (label: string, path: string) =>
          Promise.all([
            page.waitForURL((url) => url.pathname === path),
            page.locator('nav').getByRole('link', { name: label, exact: true }).click(),
          ]);
        const shown = 'Message: Customer Grace Hopper added';

        await createCustomer('Grace Hopper', 'peek');
        expect(await message()).toBe(shown);
        await page.reload();
        expect(await message()).toBe(shown);
        for (let round = 0; round < 2; round++) {
          await nav('Keep', '/customers/keep');
          expect(await message()).toBe(shown);
          await page.reload();
          expect(await message()).toBe(shown);
          await nav('Peek', '/customers/peek');
          expect(await message()).toBe(shown);
        }

        // The index page reads it without keeping it: shown once more, then gone everywhere.
        await nav('Customers', '/customers');
        expect(await message()).toBe(shown);
        await nav('Peek', '/customers/peek');
        expect(await message()).toMatch(/^No message in TempData/);
        await nav('Keep', '/customers/keep');
        expect(await message()).toMatch(/^No message in TempData/);

        // Landing on Keep straight from the form keeps it as well.
        await createCustomer('Katherine Johnson', 'keep');
        expect(await message()).toBe('Message: Customer Katherine Johnson added');
        await nav('Peek', '/customers/peek');
        expect(await message()).toBe('Message: Customer Katherine Johnson added');
      });

      test('a message set in another browser is not seen here', async () => {
        await createCustomer('Hedy Lamarr');
        const other = await browser.newContext({ baseURL: app.url });
        try {
          const otherPage = await other.newPage();
          await open(otherPage, '/customers/peek');
          expect(await message(otherPage)).toMatch(/^No message in TempData/);
        } finally {
          await other.close();
        }
      });

      test('user input is escaped, never executed', async () => {
        const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
        await createCustomer(evil);
        expect(await message()).toBe(`Message: Customer ${evil} added`);
        expect(await page.locator('main img, main script').count()).toBe(0);
        expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
      });

      test('an invalid name comes back to the form with an error (through TempData)', async () => {
        await open(page, '/customers/create');
        await page.fill('#name', '   ');
        await submit(page, 'Save', '/customers/create');
        expect(await page.locator('.error').innerText()).toBe('Enter a name of 1 to 100 characters.');
        await page.reload();
        expect(await page.locator('.error').count()).toBe(0);
      });
    },
  );
});
