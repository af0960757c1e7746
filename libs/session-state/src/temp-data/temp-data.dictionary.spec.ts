import { jest } from '@jest/globals';
import { TempDataDictionary } from './temp-data.dictionary.js';
import { decodeTempData, encodeTempData } from './temp-data.value-codec.js';

type Loader = () => Map<string, unknown>;

function dictionary(initial: Record<string, unknown> = {}): {
  tempData: TempDataDictionary;
  loader: jest.Mock<Loader>;
} {
  const loader = jest.fn<Loader>(() => new Map(Object.entries(initial)));
  return { tempData: new TempDataDictionary(loader), loader };
}

/** Simulates the requests of one browser: what a request saves is what the next one loads. */
class Browser {
  private stored: Uint8Array = encodeTempData([]);

  request(handler: (tempData: TempDataDictionary) => void): void {
    const saved = this.stored;
    const tempData = new TempDataDictionary(() => decodeTempData(saved));
    handler(tempData);
    if (tempData.isLoaded) this.stored = encodeTempData(tempData.toSave());
  }

  get contents(): Map<string, unknown> {
    return decodeTempData(this.stored);
  }
}

describe('TempDataDictionary', () => {
  describe('lazy loading', () => {
    it('does not call the loader until the first access, and never when untouched', () => {
      const { tempData, loader } = dictionary({ Message: 'hi' });
      expect(loader).not.toHaveBeenCalled();
      expect(tempData.isLoaded).toBe(false);
      expect(tempData.isTouched).toBe(false);
    });

    it.each<[string, (tempData: TempDataDictionary) => unknown]>([
      ['get', (t) => t.get('Message')],
      ['peek', (t) => t.peek('Message')],
      ['has', (t) => t.has('Message')],
      ['set', (t) => t.set('Other', 1)],
      ['set(undefined)', (t) => t.set('Message', undefined)],
      ['remove', (t) => t.remove('Message')],
      ['clear', (t) => t.clear()],
      ['keys', (t) => t.keys()],
      ['size', (t) => t.size],
      ['entries', (t) => t.entries()],
      ['spread', (t) => [...t]],
    ])('loads on %s, exactly once', (_label, access) => {
      const { tempData, loader } = dictionary({ Message: 'hi' });
      access(tempData);
      expect(loader).toHaveBeenCalledTimes(1);
      tempData.get('Message');
      tempData.peek('Message');
      tempData.keys();
      expect(loader).toHaveBeenCalledTimes(1);
      expect(tempData.isLoaded).toBe(true);
      expect(tempData.isTouched).toBe(true);
    });

    it('does not load for keep() or keep(key), which need no data', () => {
      const { tempData, loader } = dictionary({ Message: 'hi' });
      tempData.keep();
      tempData.keep('Message');
      expect(loader).not.toHaveBeenCalled();
      expect(tempData.isLoaded).toBe(false);
      expect(tempData.isTouched).toBe(true);
    });

    it('does not validate-and-load for a rejected set', () => {
      const { tempData, loader } = dictionary();
      expect(() => tempData.set('Bad', () => 1)).toThrow(TypeError);
      expect(loader).not.toHaveBeenCalled();
    });

    it('reports a failing loader on every access and does not call it again', () => {
      const failure = new Error('cookie store exploded');
      const loader = jest.fn<Loader>(() => {
        throw failure;
      });
      const tempData = new TempDataDictionary(loader);
      expect(() => tempData.get('a')).toThrow(failure);
      expect(() => tempData.peek('a')).toThrow(failure);
      expect(loader).toHaveBeenCalledTimes(1);
      expect(tempData.isLoaded).toBe(false);
    });

    it('toSave() on an unloaded dictionary loads and keeps everything (providers should check isLoaded)', () => {
      const { tempData, loader } = dictionary({ Message: 'hi' });
      expect(tempData.toSave()).toEqual(new Map([['Message', 'hi']]));
      expect(loader).toHaveBeenCalledTimes(1);
    });
  });

  describe('save rule', () => {
    it('keeps loaded values nobody read', () => {
      const { tempData } = dictionary({ Message: 'hi', Other: 1 });
      expect(tempData.size).toBe(2);
      expect(tempData.toSave()).toEqual(
        new Map<string, unknown>([
          ['Message', 'hi'],
          ['Other', 1],
        ]),
      );
    });

    it('get() returns the value and marks it for deletion', () => {
      const { tempData } = dictionary({ Message: 'hi', Other: 1 });
      expect(tempData.get('Message')).toBe('hi');
      expect(tempData.get('Message')).toBe('hi');
      expect(tempData.toSave()).toEqual(new Map([['Other', 1]]));
    });

    it('get() of a missing key returns undefined', () => {
      const { tempData } = dictionary();
      expect(tempData.get('Nope')).toBeUndefined();
      expect(tempData.toSave().size).toBe(0);
    });

    it('peek() and has() read without marking', () => {
      const { tempData } = dictionary({ Message: 'hi' });
      expect(tempData.peek('Message')).toBe('hi');
      expect(tempData.has('Message')).toBe(true);
      expect(tempData.has('Nope')).toBe(false);
      expect(tempData.toSave()).toEqual(new Map([['Message', 'hi']]));
    });

    it('keep() retains every value, read before or after', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      tempData.get('A');
      tempData.keep();
      tempData.get('B');
      expect(tempData.toSave()).toEqual(
        new Map([
          ['A', 1],
          ['B', 2],
        ]),
      );
    });

    it('keep() before the data is loaded still retains the values read afterwards', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      tempData.keep();
      tempData.get('A');
      tempData.get('B');
      expect(tempData.toSave()).toEqual(
        new Map([
          ['A', 1],
          ['B', 2],
        ]),
      );
    });

    it('keep(key) retains only that value', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      tempData.get('A');
      tempData.get('B');
      tempData.keep('A');
      expect(tempData.toSave()).toEqual(new Map([['A', 1]]));
    });

    it('a value set in this request is kept until read', () => {
      const { tempData } = dictionary();
      tempData.set('Message', 'Customer Ada added');
      expect(tempData.peek('Message')).toBe('Customer Ada added');
      expect(tempData.toSave()).toEqual(new Map([['Message', 'Customer Ada added']]));
    });

    it('a value set and read in the same request is not kept', () => {
      const { tempData } = dictionary();
      tempData.set('Message', 'hi');
      expect(tempData.get('Message')).toBe('hi');
      expect(tempData.toSave().size).toBe(0);
    });

    it('setting a value that was read makes it unread again', () => {
      const { tempData } = dictionary({ Message: 'old' });
      tempData.get('Message');
      tempData.set('Message', 'new');
      expect(tempData.toSave()).toEqual(new Map([['Message', 'new']]));
    });

    it('set(key, undefined) removes the key', () => {
      const { tempData } = dictionary({ Message: 'hi' });
      tempData.set('Message', undefined);
      expect(tempData.has('Message')).toBe(false);
      expect(tempData.toSave().size).toBe(0);
    });

    it('remove() drops a value even if kept, and reports whether it was there', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      tempData.keep();
      expect(tempData.remove('A')).toBe(true);
      expect(tempData.remove('A')).toBe(false);
      expect(tempData.toSave()).toEqual(new Map([['B', 2]]));
    });

    it('clear() drops everything, kept or not', () => {
      const { tempData } = dictionary({ A: 1 });
      tempData.keep();
      tempData.set('B', 2);
      tempData.clear();
      expect(tempData.size).toBe(0);
      expect(tempData.toSave().size).toBe(0);
    });

    it('toSave() does not change the dictionary', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      tempData.get('A');
      tempData.toSave();
      expect(tempData.keys()).toEqual(['A', 'B']);
      expect(tempData.toSave()).toEqual(new Map([['B', 2]]));
    });
  });

  describe('enumeration', () => {
    it('entries() and spreading mark every yielded value as read (as ASP.NET)', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      expect([...tempData.entries()]).toEqual([
        ['A', 1],
        ['B', 2],
      ]);
      expect(tempData.toSave().size).toBe(0);

      const second = dictionary({ A: 1, B: 2 }).tempData;
      for (const [key] of second) if (key === 'A') break;
      expect(second.toSave()).toEqual(new Map([['B', 2]]));
    });

    it('keys() and size do not mark anything as read', () => {
      const { tempData } = dictionary({ A: 1, B: 2 });
      expect(tempData.keys()).toEqual(['A', 'B']);
      expect(tempData.size).toBe(2);
      expect(tempData.toSave().size).toBe(2);
    });
  });

  describe('case-insensitive keys', () => {
    it('finds a value whatever the casing, and keeps the first casing', () => {
      const { tempData } = dictionary();
      tempData.set('Message', 'one');
      expect(tempData.peek('MESSAGE')).toBe('one');
      tempData.set('message', 'two');
      expect(tempData.size).toBe(1);
      expect(tempData.keys()).toEqual(['Message']);
      expect(tempData.toSave()).toEqual(new Map([['Message', 'two']]));
    });

    it('reading, keeping and removing under another casing act on the loaded key', () => {
      const read = dictionary({ Message: 'hi' }).tempData;
      expect(read.get('mEsSaGe')).toBe('hi');
      expect(read.toSave().size).toBe(0);

      const kept = dictionary({ Message: 'hi' }).tempData;
      kept.get('message');
      kept.keep('MESSAGE');
      expect(kept.toSave()).toEqual(new Map([['Message', 'hi']]));

      const removed = dictionary({ Message: 'hi' }).tempData;
      expect(removed.remove('MESSAGE')).toBe(true);
      expect(removed.has('Message')).toBe(false);
    });

    it('folds non-ASCII letters too, but not into longer strings (ß is not SS)', () => {
      const { tempData } = dictionary();
      tempData.set('Café', 1);
      tempData.set('straße', 2);
      expect(tempData.peek('CAFÉ')).toBe(1);
      expect(tempData.peek('STRASSE')).toBeUndefined();
      expect(tempData.peek('STRAßE')).toBe(2);
    });

    it('merges loaded keys that differ only in case, keeping the first casing', () => {
      const { tempData } = dictionary({ Message: 'a', MESSAGE: 'b' });
      expect(tempData.keys()).toEqual(['Message']);
      expect(tempData.peek('message')).toBe('b');
    });
  });

  describe('values', () => {
    it('rejects unsupported values at assignment, naming the key, and leaves the old value', () => {
      const { tempData } = dictionary({ Message: 'hi' });
      expect(() => tempData.set('Message', { items: [1, 2, () => 1] })).toThrow(
        /^TempData value "Message" at \.items\[2\] is a function/,
      );
      expect(() => tempData.set('Lookup', new Map())).toThrow(TypeError);
      expect(() => tempData.set('Big', 1n)).toThrow(/"Big" is a bigint/);
      expect(tempData.peek('Message')).toBe('hi');
      expect(tempData.has('Lookup')).toBe(false);
    });

    it('rejects non-string keys', () => {
      const { tempData } = dictionary();
      expect(() => tempData.set(1 as unknown as string, 'x')).toThrow(/keys must be strings/);
    });

    it('returns values with the types they were stored with', () => {
      const { tempData } = dictionary();
      const when = new Date(0);
      tempData.set('When', when);
      const read = tempData.get<Date>('When');
      expect(read).toBeInstanceOf(Date);
      expect(read).toEqual(when);
    });

    it('keeps a copy of an object or array: changing it after set changes nothing stored', () => {
      const { tempData } = dictionary();
      const cart = { items: ['tea'], when: new Date(0) };
      tempData.set('Cart', cart);
      cart.items.push('cake');
      (cart as Record<string, unknown>).refresh = () => 1; // would make the save fail if it were the stored value
      expect(tempData.peek('Cart')).toEqual({ items: ['tea'], when: new Date(0) });
      expect(tempData.toSave().get('Cart')).not.toBe(cart);
    });
  });

  describe('across requests (dictionary + codec)', () => {
    it('Post/Redirect/Get: the message shows once', () => {
      const browser = new Browser();
      browser.request((t) => t.set('Message', 'Customer Ada added'));
      let shown: unknown;
      browser.request((t) => (shown = t.get('Message')));
      expect(shown).toBe('Customer Ada added');
      browser.request((t) => (shown = t.get('Message')));
      expect(shown).toBeUndefined();
    });

    it('peek and keep leave the message for the next request', () => {
      const browser = new Browser();
      browser.request((t) => t.set('Message', 'hi'));
      browser.request((t) => t.peek('Message'));
      browser.request((t) => {
        t.get('Message');
        t.keep('Message');
      });
      browser.request((t) => {
        t.get('Message');
        t.keep();
      });
      expect(browser.contents).toEqual(new Map([['Message', 'hi']]));
    });

    it('an untouched request leaves stored TempData alone without loading it', () => {
      const browser = new Browser();
      browser.request((t) => t.set('Message', 'hi'));
      browser.request(() => undefined);
      expect(browser.contents).toEqual(new Map([['Message', 'hi']]));
    });

    it('types survive: Date, nested values, null, NaN, -0, date-looking strings', () => {
      const value = { at: new Date(86_400_000), list: [null, NaN, -0, '2024-01-01T00:00:00.000Z'], $d: 1 };
      const browser = new Browser();
      browser.request((t) => t.set('Value', value));
      let read: unknown;
      browser.request((t) => (read = t.get('value')));
      expect(read).toStrictEqual(value);
      expect((read as typeof value).at).toBeInstanceOf(Date);
      expect(Object.is((read as typeof value).list[2], -0)).toBe(true);
      expect(typeof (read as typeof value).list[3]).toBe('string');
    });
  });
});
