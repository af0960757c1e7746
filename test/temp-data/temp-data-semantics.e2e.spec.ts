import 'reflect-metadata';
import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { setCookies } from '../support/cookie-jar.js';
import { CookieTempDataProvider } from '../../libs/session-state/src/temp-data/cookie-temp-data.provider.js';
import { SessionTempDataProvider } from '../../libs/session-state/src/temp-data/session-temp-data.provider.js';
import { Browser, DELETE_ATTRIBUTES, TEMP_DATA_COOKIE, tempDataSetCookies } from './support/browser.js';
import { startTempDataApp } from './support/temp-data-test.app.js';

/**
 * ASP.NET's TempDataDictionary rules, observed over HTTP with a real Nest app, for both providers.
 * Each step is a separate request carrying the cookies the previous responses set.
 */
describe.each([
  ['cookie', CookieTempDataProvider.prototype],
  ['session', SessionTempDataProvider.prototype],
] as const)('TempData semantics over HTTP (%s provider)', (provider, providerPrototype) => {
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startTempDataApp({ tempData: { provider } }));
  });
  afterAll(() => app.close());
  afterEach(() => jest.restoreAllMocks());

  /** A browser holding `Message` (and any extra values) from a previous request. */
  async function browserWith(values: Record<string, unknown> = { Message: 'hello' }): Promise<Browser> {
    const browser = new Browser(url);
    await browser.run(...Object.entries(values).map(([key, value]) => ({ op: 'set' as const, key, value })));
    return browser;
  }

  describe('lazy loading', () => {
    it('never calls the provider for a request that does not touch TempData, and loads on first use', async () => {
      const browser = await browserWith();
      const load = jest.spyOn(providerPrototype, 'load');
      const save = jest.spyOn(providerPrototype, 'save');

      const untouched = await browser.get('/td/untouched');
      expect(untouched.status).toBe(200);
      expect(setCookies(untouched)).toEqual([]);
      // Receiving the dictionary is not using it.
      const injected = await browser.get('/td/injected');
      expect(injected.status).toBe(200);
      expect(setCookies(injected)).toEqual([]);
      expect(load).not.toHaveBeenCalled();
      expect(save).not.toHaveBeenCalled();

      expect(await browser.run({ op: 'peek', key: 'Message' }, { op: 'peek', key: 'Message' })).toEqual([
        'hello',
        'hello',
      ]);
      expect(load).toHaveBeenCalledTimes(1);
      // The untouched requests left the value in place.
      expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['hello']);
    });

    it('keep() alone does not load TempData and changes nothing', async () => {
      const browser = await browserWith();
      const load = jest.spyOn(providerPrototype, 'load');
      const res = await browser.ops({ op: 'keep' });
      expect(res.body.results).toEqual([null]);
      expect(load).not.toHaveBeenCalled();
      expect(setCookies(res)).toEqual([]);
      expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['hello']);
    });
  });

  it('reading a value marks it for deletion at the end of the request (it stays readable until then)', async () => {
    const browser = await browserWith({ Message: 'hello', Other: 'other' });
    expect(await browser.run({ op: 'get', key: 'Message' }, { op: 'get', key: 'Message' })).toEqual([
      'hello',
      'hello',
    ]);
    expect(await browser.run({ op: 'peek', key: 'Message' }, { op: 'peek', key: 'Other' })).toEqual([
      null,
      'other',
    ]);
  });

  it('enumerating the entries counts as reading all of them', async () => {
    const browser = await browserWith({ Message: 'hello', Other: 'other' });
    expect(await browser.run({ op: 'entries' })).toEqual([{ Message: 'hello', Other: 'other' }]);
    expect(await browser.run({ op: 'keys' })).toEqual([[]]);
  });

  it('peek(key) reads without marking: the value is there on the next request, and nothing is rewritten', async () => {
    const browser = await browserWith();
    const peeked = await browser.ops({ op: 'peek', key: 'Message' }, { op: 'has', key: 'Message' });
    expect(peeked.body.results).toEqual(['hello', true]);
    expect(setCookies(peeked)).toEqual([]);
    expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['hello']);
    expect(await browser.run({ op: 'peek', key: 'Message' })).toEqual([null]);
  });

  it('keep() retains every value, read or not', async () => {
    const browser = await browserWith({ Message: 'hello', Other: 'other', Third: 3 });
    expect(
      await browser.run({ op: 'get', key: 'Message' }, { op: 'get', key: 'Other' }, { op: 'keep' }),
    ).toEqual(['hello', 'other', null]);
    expect(
      await browser.run(
        { op: 'get', key: 'Message' },
        { op: 'get', key: 'Other' },
        { op: 'get', key: 'Third' },
      ),
    ).toEqual(['hello', 'other', 3]);
    expect(await browser.run({ op: 'keys' })).toEqual([[]]);
  });

  it('keep(key) retains only that value (the key ignores case)', async () => {
    const browser = await browserWith({ Message: 'hello', Other: 'other' });
    expect(
      await browser.run(
        { op: 'get', key: 'Message' },
        { op: 'get', key: 'Other' },
        { op: 'keep', key: 'MESSAGE' },
      ),
    ).toEqual(['hello', 'other', null]);
    expect(await browser.run({ op: 'keys' }, { op: 'peek', key: 'Message' })).toEqual([['Message'], 'hello']);
  });

  it('a value set in a request lives until it is read, however many requests pass first', async () => {
    const browser = await browserWith({ Message: 'hello' });
    await browser.get('/td/untouched');
    // Loaded, but Message is not read: it must be saved again as it is.
    expect(await browser.run({ op: 'get', key: 'Unrelated' }, { op: 'set', key: 'Extra', value: 1 })).toEqual(
      [null, null],
    );
    expect(await browser.run({ op: 'get', key: 'Extra' })).toEqual([1]);
    await browser.get('/td/untouched');
    expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['hello']);
    expect(await browser.run({ op: 'get', key: 'Message' })).toEqual([null]);
  });

  it('a value read and then set again in the same request is kept (set wins over the read)', async () => {
    const browser = await browserWith({ Message: 'first' });
    expect(
      await browser.run({ op: 'get', key: 'Message' }, { op: 'set', key: 'Message', value: 'second' }),
    ).toEqual(['first', null]);
    expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['second']);
  });

  it('a value set and read in the same request is not kept', async () => {
    const fresh = new Browser(url);
    const res = await fresh.ops({ op: 'set', key: 'Message', value: 'now' }, { op: 'get', key: 'Message' });
    expect(res.body.results).toEqual([null, 'now']);
    // Nothing left to store: no TempData cookie, and no session is started for it.
    expect(setCookies(res)).toEqual([]);
    expect(await fresh.run({ op: 'get', key: 'Message' })).toEqual([null]);

    const browser = await browserWith({ Other: 'other' });
    expect(
      await browser.run({ op: 'set', key: 'Message', value: 'now' }, { op: 'get', key: 'message' }),
    ).toEqual([null, 'now']);
    expect(await browser.run({ op: 'peek', key: 'Message' }, { op: 'peek', key: 'Other' })).toEqual([
      null,
      'other',
    ]);
  });

  it('keys are case-insensitive and keep the casing they were first stored with', async () => {
    const browser = await browserWith({ Message: 'hello' });
    expect(
      await browser.run(
        { op: 'has', key: 'MESSAGE' },
        { op: 'peek', key: 'message' },
        { op: 'set', key: 'mEsSaGe', value: 'replaced' },
        { op: 'keys' },
        { op: 'size' },
      ),
    ).toEqual([true, 'hello', null, ['Message'], 1]);
    const lower = await browser.get('/td/message-lower');
    expect(lower.body).toEqual({ message: 'replaced' });
    expect(await browser.run({ op: 'keys' })).toEqual([[]]);
  });

  describe('a handler that throws', () => {
    it('does not save TempData: values read stay for the next request, values set are dropped', async () => {
      const browser = await browserWith({ Message: 'hello' });
      const failed = await browser.ops(
        { op: 'get', key: 'Message' },
        { op: 'set', key: 'Added', value: 'lost' },
        { op: 'remove', key: 'Message' },
        { op: 'throw' },
      );
      expect(failed.status).toBe(400);
      expect(failed.body).toMatchObject({ message: 'handler failed after using TempData' });
      expect(tempDataSetCookies(failed)).toEqual([]);
      expect(await browser.run({ op: 'get', key: 'Message' }, { op: 'peek', key: 'Added' })).toEqual([
        'hello',
        null,
      ]);
    });

    it('does not create TempData for a new visitor', async () => {
      const fresh = new Browser(url);
      const failed = await fresh.ops({ op: 'set', key: 'Message', value: 'lost' }, { op: 'throw' });
      expect(failed.status).toBe(400);
      expect(setCookies(failed)).toEqual([]);
      expect(await fresh.run({ op: 'peek', key: 'Message' })).toEqual([null]);
    });
  });

  it('a value set after TempData was saved is refused (TempDataResponseStartedError), not saved, and the request does not crash', async () => {
    const browser = new Browser(url);
    const res = await browser.post('/td/late');
    expect(res.status).toBe(201);
    expect(res.text).toBe('started;TempDataResponseStartedError');
    expect(setCookies(res)).toEqual([]);
    expect(await browser.run({ op: 'peek', key: 'Message' })).toEqual([null]);
  });

  it("@TempData('key') hands the value to the handler and counts as a read", async () => {
    const browser = await browserWith({ Message: 'hello', Other: 'other' });
    const first = await browser.get('/td/message');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ message: 'hello' });
    expect((await browser.get('/td/message')).body).toEqual({ message: null });
    expect(await browser.run({ op: 'keys' })).toEqual([['Other']]);
  });

  describe('TempDataAccessor in a singleton service', () => {
    it('sets and reads TempData for the current request', async () => {
      const browser = new Browser(url);
      const flashed = await browser.post('/td/service/flash', { message: 'from a service' });
      expect(flashed.status).toBe(200);
      expect(await browser.run({ op: 'peek', key: 'Message' })).toEqual(['from a service']);
      expect((await browser.get('/td/service/take')).body).toEqual({ message: 'from a service' });
      expect((await browser.get('/td/service/take')).body).toEqual({ message: null });
    });

    it('keeps concurrent requests apart', async () => {
      const browsers = await Promise.all(['a', 'b', 'c', 'd'].map((m) => browserWith({ Message: m })));
      const answers = await Promise.all(
        browsers.map((browser, index) => browser.get(`/td/service/slow-take/${40 - index * 10}`)),
      );
      expect(answers.map((res) => res.body)).toEqual(['a', 'b', 'c', 'd'].map((message) => ({ message })));
    });
  });

  if (provider === 'cookie') {
    it('TempDataAccessor.current works without load() for the cookie provider', async () => {
      const browser = await browserWith({ Message: 'current' });
      expect((await browser.get('/td/service/peek-current')).body).toEqual({ message: 'current' });
      expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['current']);
    });

    it('a tampered TempData cookie on a route that does not touch TempData is left alone (not even read)', async () => {
      const browser = new Browser(url);
      browser.jar.set(TEMP_DATA_COOKIE, 'tampered-not-a-real-value');
      const untouched = await browser.get('/td/untouched');
      expect(untouched.status).toBe(200);
      expect(setCookies(untouched)).toEqual([]);
      const injected = await browser.get('/td/injected');
      expect(setCookies(injected)).toEqual([]);
      // The first route that uses TempData reads it, finds it bad and deletes it.
      const used = await browser.ops({ op: 'peek', key: 'Message' });
      expect(used.body.results).toEqual([null]);
      expect(tempDataSetCookies(used).map((c) => [c.name, c.value, c.attributes])).toEqual([
        [TEMP_DATA_COOKIE, '', DELETE_ATTRIBUTES],
      ]);
    });
  }
});
