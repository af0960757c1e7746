import { createHash } from 'node:crypto';
import { Command } from 'ioredis';

/** An argument as the library's scripts take them. */
export type ScriptArgument = string | Buffer | number;

/**
 * A command whose RESP the library wrote itself, sent through the client's `sendCommand` (so the
 * client's queueing, reconnects, timeouts and reply parsing stay as they are). Replies come back
 * as Buffers (bulk strings) and numbers, as with `defineCommand`'s `...Buffer` variants.
 */
export class EncodedCommand extends Command {
  constructor(
    name: string,
    private readonly encoded: string | Buffer,
  ) {
    // No arguments for ioredis to convert, scan for keys or look up per-argument command flags for.
    super(name, []);
  }

  override toWritable(): string | Buffer {
    return this.encoded;
  }
}

/**
 * `EVALSHA` of one script, encoded by the library. ioredis' generic path for a defined script
 * (argument flattening and conversion, key detection, flag lookups by lower-cased name, the
 * `EVALSHA`/`EVAL` wrapper) cost ~10 µs of CPU per session request with two scripts
 * (bench/README.md, seventh round); this costs ~2.
 *
 * Only where it sends the same bytes at the same moment as ioredis would (RedisConnection decides):
 * a standalone client without `keyPrefix` (a cluster routes a command by the keys ioredis found in it,
 * and a prefix is applied to those keys; this command lists none) and without auto-pipelining.
 */
export class ScriptEncoder {
  /** The SHA1 that `EVALSHA` names the script by (what `SCRIPT LOAD` answers). */
  readonly sha: string;
  /** Everything after the array header up to the script's own arguments. */
  private readonly head: Buffer;

  constructor(lua: string, numberOfKeys: number) {
    this.sha = createHash('sha1').update(lua).digest('hex');
    this.head = Buffer.from(`$7\r\nevalsha\r\n$40\r\n${this.sha}\r\n${bulk(String(numberOfKeys))}`, 'latin1');
  }

  /**
   * The command for `EVALSHA sha numberOfKeys ...args`; undefined when an argument is none of the
   * types encoded here (ioredis' own path converts it its way).
   */
  command(args: readonly ScriptArgument[]): EncodedCommand | undefined {
    const encoded = encode(this.head, args.length + 3, args);
    return encoded === undefined ? undefined : new EncodedCommand('evalsha', encoded);
  }
}

/**
 * The byte lengths of the arguments of the command being encoded, between its two passes (encoding is
 * synchronous, so one array serves every command); grown when a command has more arguments.
 */
let argumentLengths = new Float64Array(32);

const CR = 13;
const LF = 10;

/**
 * The RESP of a command, `*count` then `head` (the leading bulk strings, already in RESP) then `args` as bulk
 * strings, written into one Buffer: its size is counted first, then every part is written in place,
 * with no string built on the way (a command is sent on every session request: the strings that
 * `$<length>\r\n<value>\r\n` concatenations left behind were ~0.9 KB of garbage per command).
 * Undefined when an argument is not a string, a number or a Buffer.
 */
function encode(head: Buffer, count: number, args: readonly ScriptArgument[]): Buffer | undefined {
  if (argumentLengths.length < args.length) argumentLengths = new Float64Array(args.length * 2);
  let size = 1 + integerLength(count) + 2 + head.length;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let length: number;
    if (typeof arg === 'string') length = Buffer.byteLength(arg);
    else if (typeof arg === 'number') {
      if (!Number.isSafeInteger(arg)) return encode(head, count, args.map(unsafeNumbersAsText));
      length = integerLength(arg);
    } else if (Buffer.isBuffer(arg)) length = arg.length;
    else return undefined;
    argumentLengths[i] = length;
    size += 1 + integerLength(length) + 2 + length + 2;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = 42; // '*'
  let at = writeInteger(out, 1, count);
  out[at++] = CR;
  out[at++] = LF;
  out.set(head, at);
  at += head.length;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    out[at++] = 36; // '$'
    at = writeInteger(out, at, argumentLengths[i]);
    out[at++] = CR;
    out[at++] = LF;
    if (typeof arg === 'string') at += out.write(arg, at);
    else if (typeof arg === 'number') at = writeInteger(out, at, arg);
    else {
      out.set(arg, at);
      at += arg.length;
    }
    out[at++] = CR;
    out[at++] = LF;
  }
  // Buffer.allocUnsafe: a byte not written would send whatever memory held before.
  if (at !== size) throw new Error(`EVALSHA encoding wrote ${at} of ${size} bytes`);
  return out;
}

/** A number that is not a safe integer as ioredis writes it (see {@link numberText}); anything else as it is. */
function unsafeNumbersAsText(arg: ScriptArgument): ScriptArgument {
  return typeof arg === 'number' && !Number.isSafeInteger(arg) ? numberText(arg) : arg;
}

/** A number as ioredis writes it: integers past 2^53 in full digits, not in exponent notation. */
function numberText(value: number): string {
  return Number.isInteger(value) && !Number.isSafeInteger(value) ? BigInt(value).toString() : String(value);
}

/** The characters of a safe integer in decimal, its sign included. */
function integerLength(value: number): number {
  let digits = 1;
  let magnitude = value < 0 ? -value : value;
  while (magnitude >= 10) {
    magnitude = Math.floor(magnitude / 10);
    digits++;
  }
  return value < 0 ? digits + 1 : digits;
}

/** Writes a safe integer in decimal at `at`; returns where it ends. */
function writeInteger(out: Buffer, at: number, value: number): number {
  if (value < 0) out[at++] = 45; // '-'
  let magnitude = value < 0 ? -value : value;
  const end = at + integerLength(magnitude);
  let i = end;
  do {
    out[--i] = 48 + (magnitude % 10);
    magnitude = Math.floor(magnitude / 10);
  } while (magnitude > 0);
  return end;
}

/** A bulk string of ASCII text (digits), whose length in bytes is its length. */
function bulk(ascii: string): string {
  return `$${ascii.length}\r\n${ascii}\r\n`;
}

/** Redis answered `EVALSHA` with NOSCRIPT: its script cache was flushed, or this is a new node. */
export function isNoScriptError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
