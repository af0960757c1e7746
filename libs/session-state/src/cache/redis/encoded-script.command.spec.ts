import { createHash } from 'node:crypto';
import { Command } from 'ioredis';
import { isNoScriptError, ScriptEncoder, type ScriptArgument } from './encoded-script.command.js';

/** What ioredis itself writes for the same command: the oracle for the library's encoding. */
function ioredisBytes(args: ScriptArgument[]): Buffer {
  const written = new Command('evalsha', args).toWritable({});
  return Buffer.isBuffer(written) ? written : Buffer.from(written, 'utf8');
}

function encodedBytes(encoder: ScriptEncoder, args: ScriptArgument[]): Buffer {
  const written = encoder.command(args)!.toWritable();
  return Buffer.isBuffer(written) ? written : Buffer.from(written, 'utf8');
}

describe('ScriptEncoder (EVALSHA written by the library)', () => {
  const lua = "return redis.call('PING')";
  const encoder = new ScriptEncoder(lua, 1);

  it('names the script by the SHA1 of its source, as SCRIPT LOAD does', () => {
    expect(encoder.sha).toBe(createHash('sha1').update(lua).digest('hex'));
  });

  const cases: [string, ScriptArgument[]][] = [
    ['text only (a load)', ['{nest_app_k}_Data', 1_200_000, 60_000]],
    [
      'UTF-8 text: lengths in bytes, not characters',
      ['{nest_caf\u00e9_k}_Data', 'cl\u00e9 \u20ac \u{1f600}', 0],
    ],
    ['empty strings and zero', ['', 0, '']],
    ['negative, fractional and large numbers', ['k', -1, 2 ** 40, 12.5, 2 ** 60, 1e21, -1e22, 1e-7]],
    [
      'a commit: text around binary values holding CR, LF, NUL and 0xff',
      [
        'k',
        1_200_000,
        '0',
        1,
        'gone',
        'count',
        Buffer.from([13, 10, 0, 255]),
        'name',
        Buffer.from('\r\n$3\r\n'),
      ],
    ],
    ['an empty Buffer', ['k', 1, Buffer.alloc(0), 'after']],
    ['a Buffer first and last', [Buffer.from([1]), 'middle', Buffer.from([2, 3])]],
    ['a value of 100 KB', ['k', Buffer.alloc(100_000, 7)]],
  ];

  it.each(cases)('%s: the same bytes as ioredis writes', (_name, args) => {
    const expected = ioredisBytes([encoder.sha, 1, ...args]);
    expect(encodedBytes(encoder, args).equals(expected)).toBe(true);
  });

  it('writes text-only commands as a string (no Buffer to allocate) and commands with binary values as one Buffer', () => {
    expect(typeof encoder.command(['k', 1])!.toWritable()).toBe('string');
    expect(Buffer.isBuffer(encoder.command(['k', Buffer.from([1])])!.toWritable())).toBe(true);
  });

  it('hands ioredis a command without arguments to convert, named evalsha', () => {
    const command = encoder.command(['k', 1, Buffer.from([1])])!;
    expect(command.name).toBe('evalsha');
    expect(command.args).toEqual([]);
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['an array', ['a', 'b']],
    ['a Uint8Array that is not a Buffer', Uint8Array.of(1, 2)],
    ['an object', { a: 1 }],
  ])('leaves a command with %s among its arguments to ioredis (no command, no throw)', (_name, odd) => {
    expect(encoder.command(['k', odd as unknown as ScriptArgument, 1])).toBeUndefined();
  });
});

describe('isNoScriptError', () => {
  it('recognizes Redis NOSCRIPT replies and nothing else', () => {
    expect(isNoScriptError(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe(true);
    expect(isNoScriptError(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(isNoScriptError('NOSCRIPT')).toBe(false);
  });
});
