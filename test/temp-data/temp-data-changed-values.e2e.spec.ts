import 'reflect-metadata';
import { Controller, Get, HttpCode, Param, Post, type INestApplication } from '@nestjs/common';
import { TempData, TempDataAccessor, type TempDataDictionary } from 'nest-session-state';
import { Browser } from './support/browser.js';
import { RecordingLogger, startTempDataApp } from './support/temp-data-test.app.js';

const SECRETS = ['Zt5nW1xQ8mKc3pLr7yHd0sJf4bGa9eUo2iTv6wRy1M'];

/** Changes an object in every way that TempData could not save: a function, a cycle, past the cookie's budget. */
function spoil(object: Record<string, unknown>, how: string): void {
  if (how === 'function') object.refresh = () => 1;
  else if (how === 'cycle') object.self = object;
  else object.notes = 'y'.repeat(20_000);
}

/** Apps that change values they handed to TempData, or read from it, in place. */
@Controller('changed')
class ChangedValuesController {
  constructor(private readonly tempData: TempDataAccessor) {}

  /** Sets two values, then changes the object it set. */
  @Post('after-set/:how')
  @HttpCode(200)
  afterSet(@TempData() tempData: TempDataDictionary, @Param('how') how: string) {
    const cart = { items: ['tea'] };
    tempData.set('Other', 'innocent');
    tempData.set('Cart', cart);
    spoil(cart, how);
    return { ok: true };
  }

  /**
   * Sets a new value, then peeks a stored object and spoils it in place (no set). (A `set` after the spoiling
   * throws a TypeError naming the spoiled key: the cookie's size check encodes every value.)
   */
  @Post('after-peek/:how')
  @HttpCode(200)
  afterPeek(@TempData() tempData: TempDataDictionary, @Param('how') how: string) {
    tempData.set('Fresh', 'new');
    spoil(tempData.peek<Record<string, unknown>>('Cart')!, how);
    return { ok: true };
  }

  /** The same, with a stored value read and kept (it is not shown again only if it is saved). */
  @Post('after-peek-keep/:how')
  @HttpCode(200)
  afterPeekKeep(@TempData() tempData: TempDataDictionary, @Param('how') how: string) {
    tempData.set('Fresh', 'new');
    tempData.get('Message');
    tempData.keep('Message');
    spoil(tempData.peek<Record<string, unknown>>('Cart')!, how);
    return { ok: true };
  }

  /** Sets two values, then peeks the object it set (the stored copy) and spoils that in place. */
  @Post('after-set-peek/:how')
  @HttpCode(200)
  afterSetPeek(@TempData() tempData: TempDataDictionary, @Param('how') how: string) {
    tempData.set('Other', 'innocent');
    tempData.set('Cart', { items: ['tea'] });
    spoil(tempData.peek<Record<string, unknown>>('Cart')!, how);
    return { ok: true };
  }

  /** Sets a value and changes it a little in place, then grows a stored object past the budget: the stored one is to blame. */
  @Post('set-changed-stored-grown')
  @HttpCode(200)
  setChangedStoredGrown(@TempData() tempData: TempDataDictionary) {
    tempData.set('Errors', ['e'.repeat(1200)]);
    tempData.peek<string[]>('Errors')!.push('x');
    spoil(tempData.peek<Record<string, unknown>>('Cart')!, 'growth');
    return { ok: true };
  }

  /** Sets two objects and changes both in place: one a little, one past the budget. */
  @Post('two-set-changed')
  @HttpCode(200)
  twoSetChanged(@TempData() tempData: TempDataDictionary) {
    tempData.set('Flash', { text: 'Saved' });
    tempData.peek<{ text: string }>('Flash')!.text = 'Saved!';
    tempData.set('Cart', { items: ['tea'] });
    spoil(tempData.peek<Record<string, unknown>>('Cart')!, 'growth');
    return { ok: true };
  }

  /** Sets two values and grows one of them in place, and a stored object too, each past the budget alone. */
  @Post('set-grown-and-stored-grown')
  @HttpCode(200)
  setGrownAndStoredGrown(@TempData() tempData: TempDataDictionary) {
    tempData.set('Plain', 'kept');
    tempData.set('Big', { items: ['tea'] });
    spoil(tempData.peek<Record<string, unknown>>('Big')!, 'growth');
    spoil(tempData.peek<Record<string, unknown>>('Cart')!, 'growth');
    return { ok: true };
  }

  /** `TempDataAccessor.current` in a handler that loaded nothing. */
  @Get('accessor-current')
  accessorCurrent() {
    try {
      this.tempData.current.set('Message', 'hi');
      return { error: null };
    } catch (error) {
      return { error: (error as Error).name, message: (error as Error).message };
    }
  }
}

describe.each(['cookie', 'session'] as const)(
  'TempData (%s provider): values changed in place',
  (provider) => {
    let app: INestApplication;
    let url: string;
    const logger = new RecordingLogger();
    beforeAll(
      async () =>
        ({ app, url } = await startTempDataApp(
          { secrets: SECRETS, tempData: { provider } },
          { controllers: [ChangedValuesController], logger },
        )),
    );
    afterAll(() => app.close());

    it.each(['function', 'cycle', 'growth'])(
      'an object changed after set (%s): what was set is saved, and the other values with it',
      async (how) => {
        const browser = new Browser(url);
        expect((await browser.post(`/changed/after-set/${how}`)).status).toBe(200);
        expect(await browser.run({ op: 'get', key: 'Other' }, { op: 'get', key: 'Cart' })).toEqual([
          'innocent',
          { items: ['tea'] },
        ]);
      },
    );

    it.each(['function', 'cycle'])(
      'a stored object read and changed in place into one TempData cannot hold (%s): dropped and named in the log, the rest saved',
      async (how) => {
        const browser = new Browser(url);
        await browser.run(
          { op: 'set', key: 'Cart', value: { items: ['tea'] } },
          { op: 'set', key: 'Message', value: 'hi' },
        );
        const linesBefore = logger.lines.length;
        expect((await browser.post(`/changed/after-peek/${how}`)).status).toBe(200);
        expect(await browser.run({ op: 'keys' })).toEqual([['Message', 'Fresh']]); // Cart is gone
        const logged = logger.lines.slice(linesBefore).map((line) => line.message);
        expect(logged).toEqual([expect.stringMatching(/TempDataSaveFailed.*changed in place.*\("Cart"\)/)]);
      },
    );

    const cart = { op: 'set', key: 'Cart', value: { items: ['tea'] } } as const;
    const message = { op: 'set', key: 'Message', value: 'hi' } as const;
    it.each([
      {
        what: 'a stored object read and grown in place',
        cookieOutcome: 'the values set in this request are saved, the others named in the log',
        stored: [cart, message],
        route: '/changed/after-peek/growth',
        inSession: ['Cart', 'Message', 'Fresh'],
        // Before, nothing was saved: the accepted set of Fresh was lost.
        inCookie: ['Fresh'],
        logged: /TempDataKeptValuesDropped.*not set in this request .*\("Cart", "Message"\)/,
      },
      {
        what: 'an object set in this request, then peeked and grown in place',
        cookieOutcome: 'dropped and named in the log, the values set with it and those stored are saved',
        stored: [message],
        route: '/changed/after-set-peek/growth',
        inSession: ['Message', 'Other', 'Cart'],
        // Before, nothing was saved (TempDataCookieTooLarge): the accepted set of Other was lost, and Message.
        inCookie: ['Message', 'Other'],
        logged:
          /TempDataKeptValuesDropped.*set in this request and then grown in place were not saved \("Cart"\)/,
      },
      {
        what: 'a value set and changed a little in place, a stored object grown',
        cookieOutcome: 'the set value is saved, the stored ones named (the stored growth is to blame)',
        stored: [cart, message],
        route: '/changed/set-changed-stored-grown',
        inSession: ['Cart', 'Message', 'Errors'],
        inCookie: ['Errors'],
        logged: /TempDataKeptValuesDropped.*not set in this request .*\("Cart", "Message"\)/,
      },
      {
        what: 'a value set and grown in place, and a stored object grown too',
        cookieOutcome: 'the other value set is saved; the grown one and the stored ones are named',
        stored: [cart, message],
        route: '/changed/set-grown-and-stored-grown',
        inSession: ['Cart', 'Message', 'Plain', 'Big'],
        // Before, nothing was saved (TempDataCookieTooLarge): the accepted set of Plain was lost.
        inCookie: ['Plain'],
        logged:
          /TempDataKeptValuesDropped.*grown in place were not saved \("Big"\), nor these others \("Cart", "Message"\)/,
      },
    ])(
      provider === 'cookie'
        ? '$what past the cookie budget: $cookieOutcome'
        : '$what (within the session limits): saved with the rest',
      async ({ stored, route, inSession, inCookie, logged }) => {
        const browser = new Browser(url);
        await browser.run(...stored);
        const linesBefore = logger.lines.length;
        expect((await browser.post(route)).status).toBe(200);
        const [keys] = await browser.run({ op: 'keys' });
        const lines = logger.lines.slice(linesBefore).map((line) => line.message);
        expect(keys).toEqual(provider === 'session' ? inSession : inCookie);
        expect(lines).toEqual(provider === 'session' ? [] : [expect.stringMatching(logged)]);
      },
    );

    if (provider === 'cookie') {
      it('two objects set and changed in place, one a little, one past the budget: only the one that grew past it is dropped', async () => {
        const browser = new Browser(url);
        await browser.run({ op: 'set', key: 'Message', value: 'hi' });
        const linesBefore = logger.lines.length;
        expect((await browser.post('/changed/two-set-changed')).status).toBe(200);
        expect(
          await browser.run({ op: 'keys' }, { op: 'get', key: 'Message' }, { op: 'get', key: 'Flash' }),
        ).toEqual([['Message', 'Flash'], 'hi', { text: 'Saved!' }]);
        expect(logger.lines.slice(linesBefore).map((line) => line.message)).toEqual([
          expect.stringMatching(/TempDataKeptValuesDropped.*grown in place were not saved \("Cart"\)/),
        ]);
      });

      it('the same with a value read and kept: the log names it too among the values not saved', async () => {
        const browser = new Browser(url);
        await browser.run(
          { op: 'set', key: 'Cart', value: { items: ['tea'] } },
          { op: 'set', key: 'Message', value: 'hi' },
        );
        const linesBefore = logger.lines.length;
        expect((await browser.post('/changed/after-peek-keep/growth')).status).toBe(200);
        expect(await browser.run({ op: 'keys' })).toEqual([['Fresh']]);
        expect(logger.lines.slice(linesBefore).map((line) => line.message)).toEqual([
          expect.stringMatching(/TempDataKeptValuesDropped.*not set in this request .*\("Cart", "Message"\)/),
        ]);
      });
    }

    it('TempDataAccessor.current before anything loaded: works with cookies; with the session, an error that says what to call', async () => {
      const res = await new Browser(url).get('/changed/accessor-current');
      expect(res.status).toBe(200);
      if (provider === 'cookie') expect(res.body).toEqual({ error: null });
      else {
        expect(res.body).toMatchObject({ error: 'SessionNotLoadedError' });
        expect((res.body as { message: string }).message).toMatch(
          /TempData.*await tempDataAccessor\.load\(\)/,
        );
      }
    });
  },
);
