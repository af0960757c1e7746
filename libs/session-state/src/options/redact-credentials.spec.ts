import { quoteRedacted, redactCredentials } from './redact-credentials.js';

describe('credentials in messages', () => {
  it.each([
    ['redis://admin:hunter2@127.0.0.1:6379', '"redis://***@127.0.0.1:6379"'],
    ['admin:hunter2@127.0.0.1:6379', '"***@127.0.0.1:6379"'],
    ["redis://user:pa'ss@host:6379", '"redis://***@host:6379"'],
    ['redis://:se"cret@host', '"redis://***@host"'],
    ['user:p w@host:6379', '"***@host:6379"'],
    ['admin:hun/ter:2@x@host', '"***@host"'],
    ['127.0.0.1:6379', '"127.0.0.1:6379"'],
  ])('an option value %j is quoted as %s', (value, quoted) => {
    expect(quoteRedacted(value)).toBe(quoted);
  });

  it('a driver message keeps its text and loses every password of a connection string in it', () => {
    const message = redactCredentials(
      `could not connect to postgres://app:pa'ss"w@db:5432/x (from "redis://:s3cret@cache:6379") or admin:pw@h:1`,
    );
    expect(message).toBe(
      'could not connect to postgres://***@db:5432/x (from "redis://***@cache:6379") or ***@h:1',
    );
  });

  it('leaves an @ that starts a word alone (a Lua script position: "Error running script on @user_script:74")', () => {
    expect(redactCredentials('ERR Error running script on @user_script:74: boom')).toBe(
      'ERR Error running script on @user_script:74: boom',
    );
  });
});
