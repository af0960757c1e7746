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
  private readonly head: string;

  constructor(lua: string, numberOfKeys: number) {
    this.sha = createHash('sha1').update(lua).digest('hex');
    this.head = `$7\r\nevalsha\r\n$40\r\n${this.sha}\r\n${bulk(String(numberOfKeys))}`;
  }

  /**
   * The command for `EVALSHA sha numberOfKeys ...args`; undefined when an argument is none of the
   * types encoded here (ioredis' own path converts it its way).
   */
  command(args: readonly ScriptArgument[]): EncodedCommand | undefined {
    const encoded = encode(`*${args.length + 3}\r\n${this.head}`, args);
    return encoded === undefined ? undefined : new EncodedCommand('evalsha', encoded);
  }
}

/**
 * The RESP of a command: `prefix` (the array header and the leading bulk strings) followed by
 * `args` as bulk strings. A string when every argument is text (the socket writes it as UTF-8,
 * which the byte lengths count), else one Buffer; undefined when an argument is not a string, a
 * number or a Buffer.
 */
function encode(prefix: string, args: readonly ScriptArgument[]): string | Buffer | undefined {
  let text = prefix;
  let parts: (string | Buffer)[] | undefined;
  for (const arg of args) {
    if (typeof arg === 'string') text += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    else if (typeof arg === 'number') text += bulk(numberText(arg));
    else if (Buffer.isBuffer(arg)) {
      (parts ??= []).push(`${text}$${arg.length}\r\n`, arg);
      text = '\r\n';
    } else return undefined;
  }
  if (parts === undefined) return text;
  parts.push(text);
  return join(parts);
}

/** A number as ioredis writes it: integers past 2^53 in full digits, not in exponent notation. */
function numberText(value: number): string {
  return Number.isInteger(value) && !Number.isSafeInteger(value) ? BigInt(value).toString() : String(value);
}

/** A bulk string of ASCII text (digits), whose length in bytes is its length. */
function bulk(ascii: string): string {
  return `$${ascii.length}\r\n${ascii}\r\n`;
}

/** Text (as UTF-8) and Buffers in one Buffer, written once. */
function join(parts: readonly (string | Buffer)[]): Buffer {
  let size = 0;
  for (const part of parts) size += typeof part === 'string' ? Buffer.byteLength(part) : part.length;
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const part of parts) {
    offset += typeof part === 'string' ? out.write(part, offset) : part.copy(out, offset);
  }
  return out;
}

/** Redis answered `EVALSHA` with NOSCRIPT: its script cache was flushed, or this is a new node. */
export function isNoScriptError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
