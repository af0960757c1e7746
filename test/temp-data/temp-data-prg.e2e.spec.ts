import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Browser, isDeletion, parseSetCookie, SESSION_COOKIE, TEMP_DATA_COOKIE } from './support/browser.js';
import { setCookies } from '../support/cookie-jar.js';
import { startTempDataApp } from './support/temp-data-test.app.js';

const MESSAGE = 'Customer Ada added';

/**
 * Post/redirect/get with TempData, as a browser does it: POST a form, get a 302 whose Set-Cookie
 * already carries the message, follow it, see the message once.
 */
describe.each([
  ['cookie', TEMP_DATA_COOKIE],
  ['session', SESSION_COOKIE],
] as const)('post/redirect/get over HTTP (%s provider)', (provider, carrier) => {
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startTempDataApp({ tempData: { provider } }));
  });
  afterAll(() => app.close());

  describe.each([
    ['@Redirect', '/customers/create'],
    ['res.redirect()', '/customers/create-res'],
  ])('set before %s', (_how, create) => {
    /** POSTs the form; asserts the redirect carries the cookie that holds the message. */
    async function postForm(browser: Browser): Promise<void> {
      const res = await browser.submit(create, { name: 'Ada' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe('/customers');
      // Deletions left out (the cookie provider's single cookie comes with its first chunk's, see the budget suite).
      const names = setCookies(res)
        .map(parseSetCookie)
        .filter((c) => !isDeletion(c))
        .map((c) => c.name);
      expect(names).toEqual([carrier]);
    }

    it('the message is there on the next request and gone on the one after', async () => {
      const browser = new Browser(url);
      await postForm(browser);
      const shown = await browser.get('/customers');
      expect(shown.status).toBe(200);
      expect(shown.body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers')).body).toEqual({ message: null });
      expect((await browser.get('/customers')).body).toEqual({ message: null });
    });

    it('peek shows it without consuming it', async () => {
      const browser = new Browser(url);
      await postForm(browser);
      expect((await browser.get('/customers/peek')).body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers/peek')).body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers')).body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers')).body).toEqual({ message: null });
    });

    it('keep shows it and keeps it for the next request', async () => {
      const browser = new Browser(url);
      await postForm(browser);
      expect((await browser.get('/customers/keep')).body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers/keep')).body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers')).body).toEqual({ message: MESSAGE });
      expect((await browser.get('/customers')).body).toEqual({ message: null });
    });

    it('a client that follows the redirect at once sees the message on the page it lands on', async () => {
      const agent = request.agent(url);
      const landed = await agent.post(create).type('form').send({ name: 'Grace' }).redirects(1);
      expect(landed.status).toBe(200);
      expect(landed.body).toEqual({ message: 'Customer Grace added' });
      const again = await agent.get('/customers');
      expect(again.body).toEqual({ message: null });
    });

    it('a second message replaces the first before it is shown', async () => {
      const browser = new Browser(url);
      await postForm(browser);
      const second = await browser.submit(create, { name: 'Grace' });
      expect(second.status).toBe(302);
      expect((await browser.get('/customers')).body).toEqual({ message: 'Customer Grace added' });
      expect((await browser.get('/customers')).body).toEqual({ message: null });
    });
  });
});
