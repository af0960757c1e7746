import {
  describeOptionValue,
  optionNames,
  UnknownOptionNames,
  type OptionNameSet,
} from './option-names.check.js';

interface Sample {
  name?: string;
  path?: string;
}

describe('optionNames', () => {
  it('lists the names in declaration order', () => {
    expect(optionNames<Sample>({ name: true, path: true })).toEqual(['name', 'path']);
  });

  it('does not compile when a name is missing or one the interface lacks is listed (checked by tsc)', () => {
    // @ts-expect-error `path` is left out
    const missing: OptionNameSet<Sample> = { name: true };
    // @ts-expect-error `domain` is not an option of Sample
    const extra: OptionNameSet<Sample> = { name: true, path: true, domain: true };
    expect([missing, extra].map((set) => Object.keys(set).length)).toEqual([1, 3]);
  });
});

describe('UnknownOptionNames', () => {
  const level = { path: 'session', names: ['cookie', 'idleTimeout'] };

  it('names the full path of an unknown name and what it probably meant', () => {
    const found = new UnknownOptionNames('SessionModule');
    expect(found.check({ idleTimeOut: 1 }, level)).toEqual({ idleTimeOut: 1 });
    expect(found.message()).toBe(
      'SessionModule option session.idleTimeOut is unknown: did you mean session.idleTimeout?',
    );
  });

  it('lists the valid names when none is close', () => {
    const found = new UnknownOptionNames('SessionModule');
    found.check({ colour: 'red' }, level);
    expect(found.message()).toBe(
      'SessionModule option session.colour is unknown. The options of session are: cookie, idleTimeout.',
    );
    const top = new UnknownOptionNames('Redis');
    top.check({ colour: 'red' }, { path: '', names: ['host', 'port'] });
    expect(top.message()).toBe(
      'Redis option colour is unknown. The options at the top level are: host, port.',
    );
  });

  it('points a name found one level too high to where it belongs', () => {
    const found = new UnknownOptionNames('SessionModule');
    found.check(
      { idletimeout: 5 },
      { path: '', names: ['session'], elsewhere: [{ path: 'session', names: ['idleTimeout'] }] },
    );
    expect(found.message()).toBe(
      'SessionModule option idletimeout is unknown: did you mean session.idleTimeout?',
    );
  });

  it('collects every problem of a walk into one message, one line each', () => {
    const found = new UnknownOptionNames('SessionModule');
    found.check({ idleTimeOut: 1, cookei: {} }, level);
    found.check('yes', { path: 'session.lock', names: ['ttl'] }, 'true, false or { ttl }');
    expect(found.message()!.split('\n')).toEqual([
      'SessionModule option session.idleTimeOut is unknown: did you mean session.idleTimeout?',
      'SessionModule option session.cookei is unknown: did you mean session.cookie?',
      'SessionModule option session.lock must be true, false or { ttl } (got "yes").',
    ]);
  });

  it('passes known names and absent objects without a message', () => {
    const found = new UnknownOptionNames('SessionModule');
    expect(found.check(undefined, level)).toBeUndefined();
    expect(found.check({ cookie: {}, idleTimeout: undefined }, level)).toBeDefined();
    expect(found.message()).toBeUndefined();
  });

  it('refuses a value that is not an object where options are expected', () => {
    for (const [value, shown] of [
      [null, 'null'],
      [[], 'an array'],
      [5, '5'],
      [() => 1, 'a function'],
    ] as const) {
      const found = new UnknownOptionNames('SessionModule');
      expect(found.check(value, level)).toBeUndefined();
      expect(found.message()).toBe(`SessionModule option session must be an object (got ${shown}).`);
    }
    const root = new UnknownOptionNames('SessionModule');
    root.check('x', { path: '', names: [] });
    expect(root.message()).toBe('SessionModule options must be an object (got "x").');
  });
});

describe('describeOptionValue', () => {
  it('quotes strings and names a number or a boolean written as one, with the conversion', () => {
    expect(describeOptionValue('sesion')).toBe('"sesion"');
    expect(describeOptionValue('20')).toBe('"20", a string: convert it with Number()');
    expect(describeOptionValue(' 1.5e3 ')).toBe('" 1.5e3 ", a string: convert it with Number()');
    expect(describeOptionValue('true')).toBe('"true", a string: pass true (a boolean)');
    expect(describeOptionValue('')).toBe('""');
    expect(describeOptionValue(20)).toBe('20');
  });
});
