/**
 * The sample app keeps each visitor's data to that visitor: preferences of any name round-trip, and
 * the customers list lives in the visitor's session, bounded, instead of one global list that any
 * anonymous client could grow for everyone.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { Browserless } from './support/browserless.js';
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

describe.each(['cookie', 'session'] as const)(
  'sample app: state stays with its visitor (TempData %s)',
  (provider) => {
    let app: SampleAppProcess;

    beforeAll(async () => {
      await ensureBuilt();
      app = await SampleAppProcess.start({ env: { TEMPDATA_PROVIDER: provider } });
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
  },
);
