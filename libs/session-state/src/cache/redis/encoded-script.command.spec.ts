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
      'integers at the edges of their digit counts',
      [0, -0, 9, 10, 99, 100, -9, -10, 999_999, 1_000_000, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER],
    ],
    [
      'a deadline and limits as a commit sends them',
      ['k', 1_200_000, 'g1', 1_764_850_000_123, 1000, 65536, 0],
    ],
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
    ['lone surrogates (written as U+FFFD, 3 bytes each)', ['\ud800', 'a\udc00b', '\udfff\ud800']],
    [
      'a Buffer that views the middle of a larger ArrayBuffer',
      ['k', Buffer.from(new ArrayBuffer(64), 7, 9).fill(3)],
    ],
    ['NaN and infinities', ['k', NaN, Infinity, -Infinity]],
    ['no arguments at all', []],
    ['a Buffer first and last', [Buffer.from([1]), 'middle', Buffer.from([2, 3])]],
    ['a value of 100 KB', ['k', Buffer.alloc(100_000, 7)]],
  ];

  it.each(cases)('%s: the same bytes as ioredis writes', (_name, args) => {
    const expected = ioredisBytes([encoder.sha, 1, ...args]);
    expect(encodedBytes(encoder, args).equals(expected)).toBe(true);
  });

  it('writes each command as one Buffer of exactly its size', () => {
    for (const args of [
      ['k', 1],
      ['k', Buffer.from([1])],
      ['k', 2 ** 60, 'caf\u00e9'],
    ] as ScriptArgument[][]) {
      const written = encoder.command(args)!.toWritable();
      expect(Buffer.isBuffer(written)).toBe(true);
      expect((written as Buffer).length).toBe(ioredisBytes([encoder.sha, 1, ...args]).length);
    }
  });

  it('encodes an unsafe integer in a command longer than its scratch space', () => {
    const many: ScriptArgument[] = [2 ** 60, ...Array.from({ length: 40 }, (_, i) => `f${i}`), -(2 ** 63)];
    expect(encodedBytes(encoder, many).equals(ioredisBytes([encoder.sha, 1, ...many]))).toBe(true);
  });

  it('encodes a command with more arguments than its scratch space holds, and a short one after it', () => {
    const many: ScriptArgument[] = Array.from({ length: 200 }, (_, i) => (i % 2 ? `field-${i}` : i * 1001));
    expect(encodedBytes(encoder, many).equals(ioredisBytes([encoder.sha, 1, ...many]))).toBe(true);
    expect(encodedBytes(encoder, ['k', 7]).equals(ioredisBytes([encoder.sha, 1, 'k', 7]))).toBe(true);
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
    // after a number that sends the command through the text conversion first
    expect(encoder.command([2 ** 60, odd as unknown as ScriptArgument])).toBeUndefined();
  });
});

describe('isNoScriptError', () => {
  it('recognizes Redis NOSCRIPT replies and nothing else', () => {
    expect(isNoScriptError(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe(true);
    expect(isNoScriptError(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(isNoScriptError('NOSCRIPT')).toBe(false);
  });
});
