import 'reflect-metadata';
import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { MemorySessionStore } from 'nest-session-state';
import { setCookies } from '../support/cookie-jar.js';
import {
  Browser,
  DEFAULT_ATTRIBUTES,
  parseSetCookie,
  SESSION_COOKIE,
  TEMP_DATA_COOKIE,
} from './support/browser.js';
import { RecordingLogger, startTempDataApp } from './support/temp-data-test.app.js';

/** The session key the session provider keeps TempData under. */
const TEMP_DATA_KEY = '__TempData';

describe("TempData session provider over HTTP (tempData: { provider: 'session' })", () => {
  const store = new MemorySessionStore();
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startTempDataApp({ store, tempData: { provider: 'session' } }));
  });
  afterAll(() => app.close());
  afterEach(() => jest.restoreAllMocks());

  it('keeps TempData in the session under one key; the only cookie is the session cookie', async () => {
    const browser = new Browser(url);
    const res = await browser.ops(
      { op: 'set', key: 'Message', value: 'hello' },
      { op: 'set', key: 'Count', value: 2 },
    );
    expect(res.status).toBe(200);
    const cookies = setCookies(res).map(parseSetCookie);
    expect(cookies.map((c) => c.name)).toEqual([SESSION_COOKIE]);
    expect(cookies[0].attributes).toEqual(DEFAULT_ATTRIBUTES);

    expect((await browser.get('/session/keys')).body).toEqual({ keys: [TEMP_DATA_KEY] });
    expect((await browser.get(`/session/raw/${TEMP_DATA_KEY}`)).body).toEqual({
      raw: '{"v":1,"d":{"Message":"hello","Count":2}}',
    });
  });

  it('survives requests until read, then the key leaves the session; session values are untouched', async () => {
    const browser = new Browser(url);
    expect((await browser.get('/session/counter')).body).toEqual({ count: 1 });
    await browser.run(
      { op: 'set', key: 'Message', value: 'hello' },
      { op: 'set', key: 'Other', value: 'other' },
    );
    expect((await browser.get('/session/keys')).body).toEqual({ keys: [TEMP_DATA_KEY, 'count'] });

    await browser.get('/td/untouched');
    expect((await browser.get('/session/counter')).body).toEqual({ count: 2 });
    expect(await browser.run({ op: 'get', key: 'Message' })).toEqual(['hello']);
    expect((await browser.get(`/session/raw/${TEMP_DATA_KEY}`)).body).toEqual({
      raw: '{"v":1,"d":{"Other":"other"}}',
    });
    expect(await browser.run({ op: 'get', key: 'Other' })).toEqual(['other']);
    expect((await browser.get('/session/keys')).body).toEqual({ keys: ['count'] });
    expect((await browser.get('/session/counter')).body).toEqual({ count: 3 });
  });

  it('is per session: another browser sees none of it', async () => {
    const a = new Browser(url);
    const b = new Browser(url);
    await a.run({ op: 'set', key: 'Message', value: 'for a' });
    await b.run({ op: 'set', key: 'Message', value: 'for b' });
    expect(await new Browser(url).run({ op: 'peek', key: 'Message' })).toEqual([null]);
    expect(await b.run({ op: 'get', key: 'Message' })).toEqual(['for b']);
    expect(await a.run({ op: 'get', key: 'Message' })).toEqual(['for a']);
  });

  it('does not load the session for a request that does not touch TempData or the session', async () => {
    const browser = new Browser(url);
    await browser.run({ op: 'set', key: 'Message', value: 'hello' });
    const load = jest.spyOn(store, 'load');
    const commit = jest.spyOn(store, 'commit');
    const remove = jest.spyOn(store, 'remove');
    const untouched = await browser.get('/td/untouched');
    expect(untouched.status).toBe(200);
    expect(setCookies(untouched)).toEqual([]);
    expect(load).not.toHaveBeenCalled();
    expect(commit).not.toHaveBeenCalled();

    // A read loads the session once and stores the removal as a field delete (issue 18: a concurrent
    // request's new key must survive); the session held only TempData, so the store finds it empty
    // and deletes it (empty sessions are not retained).
    const held = store.count;
    expect((await browser.get('/td/message')).body).toEqual({ message: 'hello' });
    expect(load).toHaveBeenCalledTimes(1);
    expect(commit).toHaveBeenCalledTimes(1);
    const changes = commit.mock.calls[0][1];
    expect(changes.cleared).toBe(false);
    expect([...changes.removed]).toEqual(['__TempData']);
    expect(changes.set.size).toBe(0);
    expect(remove).not.toHaveBeenCalled();
    expect(store.count).toBe(held - 1);
    // A peek changes nothing, so nothing is written.
    await browser.run({ op: 'peek', key: 'Message' });
    expect(commit).toHaveBeenCalledTimes(1);
    expect(remove).not.toHaveBeenCalled();
  });

  it('ignores the TempData cookie entirely (neither read nor deleted)', async () => {
    const browser = new Browser(url);
    await browser.run({ op: 'set', key: 'Message', value: 'hello' });
    browser.jar.set(TEMP_DATA_COOKIE, 'chunks-10000');
    const res = await browser.ops({ op: 'peek', key: 'Message' }, { op: 'set', key: 'Other', value: 1 });
    expect(res.body.results).toEqual(['hello', null]);
    expect(setCookies(res)).toEqual([]);
    expect(browser.jar.get(TEMP_DATA_COOKIE)).toBe('chunks-10000');
  });

  it('holds payloads far larger than a cookie could', async () => {
    const browser = new Browser(url);
    const big = 'x'.repeat(60 * 1024); // over the cookie provider's 40 KiB limit
    await browser.run({ op: 'set', key: 'Big', value: big });
    expect(setCookies(await browser.ops({ op: 'peek', key: 'Big' }))).toEqual([]);
    expect(await browser.run({ op: 'get', key: 'Big' })).toEqual([big]);
  });

  it('refuses at set a value that would take TempData past a session limit (413 naming the key), keeping what is there', async () => {
    const logger = new RecordingLogger();
    const limited = await startTempDataApp(
      { tempData: { provider: 'session' }, session: { maxValueBytes: 4096 } },
      { logger },
    );
    try {
      const browser = new Browser(limited.url);
      await browser.run({ op: 'set', key: 'Small', value: 'kept' });
      // 3,000 characters each: one fits, two take TempData's one session value over 4096 bytes
      await browser.run({ op: 'set', key: 'First', value: 'y'.repeat(3000) });
      const refused = await browser.ops({ op: 'set', key: 'Big', value: 'z'.repeat(3000) });
      expect(refused.status).toBe(413);
      const body = refused.body as unknown as { code: string; message: string };
      expect(body.code).toBe('SESSION_LIMIT_EXCEEDED');
      expect(body.message).toMatch(
        /^TempData's session value "__TempData", with TempData value "Big", is \d+ bytes, over the limit of 4096 \(session\.maxValueBytes\)/,
      );
      expect(await browser.run({ op: 'peek', key: 'Big' }, { op: 'get', key: 'Small' })).toEqual([
        null,
        'kept',
      ]);
      // Once First is read, Big fits: the refusal is the limit's, not the key's.
      expect(await browser.run({ op: 'get', key: 'First' })).toEqual(['y'.repeat(3000)]);
      await browser.run({ op: 'set', key: 'Big', value: 'z'.repeat(3000) });
      expect(await browser.run({ op: 'get', key: 'Big' })).toEqual(['z'.repeat(3000)]);

      // keep() of a read value past the limit: the value set is saved, the read one is not kept.
      await browser.run({ op: 'set', key: 'A', value: 'a'.repeat(3000) });
      await browser.run(
        { op: 'get', key: 'A' },
        { op: 'set', key: 'B', value: 'b'.repeat(3000) },
        { op: 'keep' },
      );
      expect(await browser.run({ op: 'keys' })).toEqual([['B']]);
      expect(logger.lines.filter((l) => l.message.includes('[TempDataKeptValuesDropped]'))).toHaveLength(1);
    } finally {
      await limited.app.close();
    }
  });

  it('TempData stored under a larger session.maxValueBytes (another instance): a value read goes, what is left is saved', async () => {
    const shared = new MemorySessionStore();
    const logger = new RecordingLogger();
    const secrets = ['Vb7nQ2xK9pLw4mYc1sRd8hJt3fZg6aEu0iOq5yTz2N'];
    const larger = await startTempDataApp({ secrets, store: shared, tempData: { provider: 'session' } });
    const smaller = await startTempDataApp(
      { secrets, store: shared, tempData: { provider: 'session' }, session: { maxValueBytes: 4096 } },
      { logger },
    );
    try {
      const onLarger = new Browser(larger.url);
      await onLarger.run(
        { op: 'set', key: 'Big', value: 'b'.repeat(6000) },
        { op: 'set', key: 'Message', value: 'Customer added' },
      );
      // The same visitor on the instance with the lower limit: read once, then gone (it came back on every
      // request, each logging an error, while the saved value stayed over the limit).
      const onSmaller = new Browser(smaller.url, onLarger.jar);
      // A set that leaves it no larger than stored goes through too (a POST that reads the message and sets another).
      expect(
        await onSmaller.run({ op: 'get', key: 'Message' }, { op: 'set', key: 'Next', value: 'ok' }),
      ).toEqual(['Customer added', null]);
      expect(await onSmaller.run({ op: 'get', key: 'Message' }, { op: 'get', key: 'Next' })).toEqual([
        null,
        'ok',
      ]);
      // Still over this instance's limit and growing is refused; reading the big value empties TempData.
      expect((await onSmaller.ops({ op: 'set', key: 'More', value: 'x' })).status).toBe(413);
      expect(await onSmaller.run({ op: 'get', key: 'Big' })).toEqual(['b'.repeat(6000)]);
      expect(await onSmaller.run({ op: 'keys' })).toEqual([[]]);
      expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
    } finally {
      await smaller.app.close();
      await larger.app.close();
    }
  });

  describe.each(['abandon', 'clear'] as const)('session.%s() in the request', (end) => {
    it('drops the TempData loaded from the ended session, whatever the order; values set in the request are saved', async () => {
      const browser = new Browser(url);
      await browser.run({ op: 'set', key: 'Old', value: "the previous user's message" });
      const path = `/td/ops-around-session/${end}`;
      // TempData loaded (and a value set) before the session ends
      await browser.post(path, { before: [{ op: 'set', key: 'Message', value: 'Bye' }], after: [] });
      expect(await browser.run({ op: 'peek', key: 'Old' }, { op: 'get', key: 'Message' })).toEqual([
        null,
        'Bye',
      ]);
      // ... and after it ends
      await browser.run({ op: 'set', key: 'Old', value: "the previous user's message" });
      await browser.post(path, {
        before: [{ op: 'peek', key: 'Old' }],
        after: [{ op: 'set', key: 'Message', value: 'Bye' }],
      });
      expect(await browser.run({ op: 'keys' })).toEqual([['Message']]);
    });
  });

  it('a TempData value set for a new visitor starts the session, and a visitor without TempData gets none', async () => {
    const untouched = new Browser(url);
    const peek = await untouched.ops({ op: 'peek', key: 'Message' }, { op: 'keys' });
    expect(peek.body.results).toEqual([null, []]);
    expect(setCookies(peek)).toEqual([]);
    const started = await untouched.ops({ op: 'set', key: 'Message', value: 'hi' });
    expect(
      setCookies(started)
        .map(parseSetCookie)
        .map((c) => c.name),
    ).toEqual([SESSION_COOKIE]);
  });

  it('an unknown provider is a startup error naming the option', async () => {
    await expect(startTempDataApp({ tempData: { provider: 'sesion' as 'session' } })).rejects.toThrow(
      "SessionModule option tempData.provider must be 'cookie' or 'session' (got \"sesion\").",
    );
  });
});

describe('TempData session provider under the session lock (session: { lock: true })', () => {
  const store = new MemorySessionStore();
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startTempDataApp({
      store,
      tempData: { provider: 'session' },
      session: { lock: true },
    }));
  });
  afterAll(() => app.close());
  afterEach(() => jest.restoreAllMocks());

  it('saves TempData into the session before the lock is released, so no other request reads it in between', async () => {
    const browser = new Browser(url);
    await browser.run({ op: 'set', key: 'Message', value: 'once' });
    const commit = jest.spyOn(store, 'commit');
    const unlock = jest.spyOn(store, 'unlock');
    // @TempData('Message') applies the session interceptor, which commits inside Nest's pipeline;
    // the read's removal of the value is saved later, before the first byte.
    expect((await browser.get('/td/message')).body).toEqual({ message: 'once' });
    expect(unlock).toHaveBeenCalledTimes(1);
    const removal = commit.mock.calls.findIndex(([, changes]) => changes.removed.has('__TempData'));
    expect(removal).toBeGreaterThanOrEqual(0);
    expect(commit.mock.invocationCallOrder[removal]).toBeLessThan(unlock.mock.invocationCallOrder[0]);
    expect((await browser.get('/td/message')).body).toEqual({ message: null });
  });
});
