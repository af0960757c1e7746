import { closestOptionName, editDistance } from './option-name.suggestion.js';

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps as one each', () => {
    expect(editDistance('host', 'host')).toBe(0);
    expect(editDistance('hots', 'host')).toBe(1); // swap
    expect(editDistance('secret', 'secrets')).toBe(1); // insertion
    expect(editDistance('ports', 'port')).toBe(1); // deletion
    expect(editDistance('maxKeys', 'maxKays')).toBe(1); // substitution
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
});

describe('closestOptionName', () => {
  const session = {
    names: ['cookie', 'idleTimeout', 'ioTimeout', 'maxValueBytes', 'maxSessionBytes', 'maxKeys', 'lock'],
  };

  it('prefers the same name in another case', () => {
    expect(closestOptionName('idleTimeOut', session)).toBe('idleTimeout');
    expect(closestOptionName('IDLETIMEOUT', session)).toBe('idleTimeout');
    expect(closestOptionName('sameSIte', { names: ['name', 'sameSite', 'securePolicy'] })).toBe('sameSite');
  });

  it('finds a near spelling within a third of the length, at least one edit', () => {
    expect(closestOptionName('hots', { names: ['host', 'port', 'url'] })).toBe('host');
    expect(closestOptionName('secret', { names: ['secrets', 'redis', 'store'] })).toBe('secrets');
    expect(closestOptionName('idelTimeot', session)).toBe('idleTimeout'); // two edits in ten letters
    expect(closestOptionName('maxKey', session)).toBe('maxKeys');
  });

  it('suggests nothing when no name is close', () => {
    expect(closestOptionName('colour', session)).toBeUndefined();
    expect(closestOptionName('xyz', { names: ['host', 'url'] })).toBeUndefined();
    // The limit: a third of the unknown name's length, at least 1.
    expect(closestOptionName('hst', { names: ['host', 'url'] })).toBe('host'); // 1 edit, limit 1
    expect(closestOptionName('hs', { names: ['host', 'url'] })).toBeUndefined(); // 2 edits, limit 1
    expect(closestOptionName('cxxkie', session)).toBe('cookie'); // 2 edits, limit 2
    expect(closestOptionName('cxxxie', session)).toBeUndefined(); // 3 edits, limit 2
  });

  it('maps an alias, case-insensitively', () => {
    const redis = {
      names: ['accessKey', 'databaseId'],
      aliases: { password: 'accessKey', db: 'databaseId' },
    };
    expect(closestOptionName('password', redis)).toBe('accessKey');
    expect(closestOptionName('DB', redis)).toBe('databaseId');
  });

  it('completes a name the user wrote without its unit, only when one option begins with it', () => {
    const redis = {
      names: [
        'connectionTimeoutInMilliseconds',
        'operationTimeoutInMilliseconds',
        'waitForReplicas',
        'waitForReplicasTimeoutInMilliseconds',
      ],
    };
    expect(closestOptionName('connectionTimeout', redis)).toBe('connectionTimeoutInMilliseconds');
    expect(closestOptionName('operationtimeout', redis)).toBe('operationTimeoutInMilliseconds');
    // `waitFor` begins two names: no guess from the prefix, and both are too far for an edit.
    expect(closestOptionName('waitFor', redis)).toBeUndefined();
    // Too short to stand for a longer name.
    expect(closestOptionName('con', redis)).toBeUndefined();
  });

  it('picks the nearest of several close names, the first listed on a tie', () => {
    expect(closestOptionName('maxKeyss', session)).toBe('maxKeys');
    expect(closestOptionName('ab', { names: ['ax', 'ay'] })).toBe('ax');
  });
});
