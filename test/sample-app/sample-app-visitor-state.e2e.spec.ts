/**
 * The sample app keeps each visitor's data to that visitor: preferences of any name round-trip, and
 * the customers list lives in the visitor's session, bounded, instead of one global list that any
 * anonymous client could grow for everyone. Handlers that write the response themselves (the cart's
 * redirect, the preferences' JSON) still commit first. Once per platform (HTTP_ADAPTER) and TempData provider.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { Browserless } from './support/browserless.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess } from './support/sample-app.process.js';

const MAX_CUSTOMERS = 20;

/** One visitor of one app instance: a cookie jar, no redirects followed, HTML by default. */
class Visitor {
  private readonly client = new Browserless();

  constructor(private readonly app: SampleAppProcess) {}

  get jar() {
    return this.client.jar;
  }

  request(path: string, init: { form?: Record<string, string>; accept?: string } = {}) {
    return this.client.request(this.app, path, { ...init, accept: init.accept ?? 'text/html' });
  }

  /** Names in the customers table of `/customers`. */
  async customers(): Promise<string[]> {
    const { body } = await this.request('/customers');
    return [...body.matchAll(/<tr><td>\d+<\/td><td>([^<]*)<\/td>/g)].map((m) => m[1]);
  }
}

const CASES = SAMPLE_APP_PLATFORMS.flatMap((platform) =>
  (['cookie', 'session'] as const).map((provider) => [platform, provider] as const),
);

describe.each(CASES)('sample app on %s: state stays with its visitor (TempData %s)', (platform, provider) => {
  let app: SampleAppProcess;

  beforeAll(async () => {
    await ensureBuilt();
    app = await SampleAppProcess.start({ env: { TEMPDATA_PROVIDER: provider, HTTP_ADAPTER: platform } });
  }, BUILD_TIMEOUT_MS);
  afterAll(() => app?.stop());

  test('a preference named __proto__ (or constructor) round-trips in GET /prefs', async () => {
    const visitor = new Visitor(app);
    for (const [key, value] of [
      ['__proto__', 'polluted?'],
      ['constructor', 'ctor'],
      ['theme', 'dark'],
    ]) {
      const set = await visitor.request(`/prefs/${key}`, { form: { value }, accept: 'application/json' });
      expect(set.status).toBe(200);
    }
    const { body } = await visitor.request('/prefs', { accept: 'application/json' });
    // JSON.parse defines "__proto__" as an own property, as the server's JSON has it.
    const prefs = JSON.parse(body) as Record<string, unknown>;
    expect(Object.entries(prefs)).toEqual([
      ['__proto__', 'polluted?'],
      ['constructor', 'ctor'],
      ['theme', 'dark'],
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('the redirect written with @Res() after adding to the cart carries the new session, committed', async () => {
    const visitor = new Visitor(app);
    const added = await visitor.request('/cart/add', { form: { item: 'Tea' } });
    expect(added.status).toBe(302);
    expect(added.location).toBe('/cart');
    // The session was established by this request: its cookie left with the 302.
    expect(visitor.jar.get('.Nest.Session')).toBeTruthy();
    const cart = await visitor.request('/cart');
    expect(cart.body).toContain("<tr class='cart-line'><td>Tea</td><td>1</td></tr>");
    await visitor.request('/cart/add', { form: { item: 'Tea' } });
    expect((await visitor.request('/cart')).body).toContain(
      "<tr class='cart-line'><td>Tea</td><td>2</td></tr>",
    );
  });

  test('a preference or a user name with a lone surrogate (a JSON escape) is a 400 or a message, not a 500', async () => {
    const post = (path: string, body: string) =>
      fetch(`${app.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        redirect: 'manual',
      });
    expect((await post('/prefs/theme', '{"value":"dark\\ud800"}')).status).toBe(400);
    const login = await post('/login', '{"user":"ada\\udc00"}');
    expect(login.status).toBe(302); // back to /account, with the message in TempData: not signed in
    expect(login.headers.get('location')).toBe('/account');
  });

  test("a second tab's sign-in, sent with the cookie the first tab's sign-in moved: a 303 back to the account page, not the 409 JSON", async () => {
    const first = new Visitor(app);
    await first.request('/counter'); // a session before signing in
    const second = new Visitor(app); // the other tab: the same cookie
    second.jar.update({ headers: { 'set-cookie': [first.jar.header()] } });
    const signedIn = await first.request('/login', { form: { user: 'clara' } });
    expect([signedIn.status, signedIn.location]).toEqual([302, '/account']);

    const refused = await second.request('/login', { form: { user: 'mickey' } });
    expect([refused.status, refused.location]).toEqual([303, '/account']);
    expect(second.jar.header()).not.toBe(first.jar.header()); // no cookie: the browser keeps the first sign-in's
    const account = await first.request('/account/sessions', { accept: 'application/json' });
    expect(JSON.parse(account.body)).toMatchObject({ user: 'clara', sessions: [{ current: true }] });
  });

  test.each([
    ['the cart', '/cart/add', { item: 'Tea' }, '/cart'],
    ['a preference', '/prefs/theme', { value: 'dark' }, '/prefs/edit'],
    ['a customer', '/customers/create', { name: 'Rory' }, '/customers/create'],
  ])(
    "%s's form, sent with the cookie another tab's sign-in moved: a 409 page that says it was not saved, not the JSON",
    async (_form, path, form, back) => {
      const signedIn = new Visitor(app);
      await signedIn.request('/counter'); // a session before signing in
      const otherTab = new Visitor(app); // the other tab: the same cookie, sent before the sign-in's reached it
      otherTab.jar.update({ headers: { 'set-cookie': [signedIn.jar.header()] } });
      expect((await signedIn.request('/login', { form: { user: 'amy' } })).status).toBe(302);

      const refused = await otherTab.request(path, { form });
      expect(refused.status).toBe(409);
      expect(refused.body).toContain("<h1 id='error-title'>Not saved</h1>");
      expect(refused.body).toContain(`<a id='error-back' href='${back}'>`);
      // No session cookie set or deleted: the browser keeps the one the sign-in sent it.
      expect(refused.setCookies.filter((c) => c.startsWith('.Nest.Session='))).toEqual([]);
      // Nothing of the refused form reached the session that moved (the signed-in one).
      const session = (await signedIn.request('/prefs', { accept: 'application/json' })).body;
      expect(JSON.parse(session)).toEqual({});
      expect((await signedIn.request('/cart')).body).not.toContain('<td>Tea</td>');
      expect(await signedIn.customers()).toEqual([]);
      // A client that asks for JSON still gets Nest's JSON.
      const json = await otherTab.request(path, { form, accept: 'application/json' });
      expect(json.status).toBe(409);
      expect(JSON.parse(json.body)).toMatchObject({ statusCode: 409 });
    },
  );

  test('a preference set with Accept: text/html answers 303 to the page; without it, the JSON', async () => {
    const visitor = new Visitor(app);
    const html = await visitor.request('/prefs/theme', { form: { value: 'dark' } });
    expect(html.status).toBe(303);
    expect(html.location).toBe('/prefs/edit');
    const json = await visitor.request('/prefs/units', { form: { value: 'metric' }, accept: '*/*' });
    expect(json.status).toBe(200);
    expect(JSON.parse(json.body)).toEqual({ theme: 'dark', units: 'metric' });
  });

  test("one visitor's customers are not shown to another", async () => {
    const ada = new Visitor(app);
    const grace = new Visitor(app);
    expect((await ada.request('/customers/create', { form: { name: 'Ada' } })).location).toBe('/customers');
    expect(await ada.customers()).toEqual(['Ada']);
    expect(await grace.customers()).toEqual([]);
    await grace.request('/customers/create', { form: { name: 'Grace' } });
    expect(await grace.customers()).toEqual(['Grace']);
    expect(await ada.customers()).toEqual(['Ada']);
  });

  test(`a visitor can add at most ${MAX_CUSTOMERS} customers; the next is refused with a message`, async () => {
    const visitor = new Visitor(app);
    for (let i = 1; i <= MAX_CUSTOMERS; i++) {
      const created = await visitor.request('/customers/create', { form: { name: `Customer ${i}` } });
      expect(created.location).toBe('/customers');
    }
    const refused = await visitor.request('/customers/create', { form: { name: 'One too many' } });
    expect(refused.status).toBe(302);
    expect(refused.location).toBe('/customers/create');
    const form = await visitor.request('/customers/create');
    expect(form.body).toContain(`This sample keeps at most ${MAX_CUSTOMERS} customers per visitor.`);
    const names = await visitor.customers();
    expect(names).toHaveLength(MAX_CUSTOMERS);
    expect(names).not.toContain('One too many');
  });
});
