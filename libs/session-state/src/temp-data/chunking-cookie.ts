/**
 * Splitting a long cookie value over several cookies and joining it back, as ASP.NET Core's
 * ChunkingCookieManager does:
 *
 * ```
 * Set-Cookie: .Nest.TempData=chunks-3; path=/
 * Set-Cookie: .Nest.TempDataC1=<segment 1>; path=/
 * Set-Cookie: .Nest.TempDataC2=<segment 2>; path=/
 * Set-Cookie: .Nest.TempDataC3=<segment 3>; path=/
 * ```
 *
 * Framework-independent: callers pass request cookies as a record and write the planned cookies themselves.
 */

/** Longest Set-Cookie value (`name=value; attributes`) written per cookie; Safari's limit is 4093. */
export const DEFAULT_COOKIE_CHUNK_SIZE = 4050;

/** Most chunks written or accepted for one cookie. */
export const DEFAULT_MAX_COOKIE_CHUNKS = 32;

const CHUNK_COUNT_PREFIX = 'chunks-';
const CHUNK_SUFFIX = 'C';
// RFC 6265 cookie-octet and token: what may appear in a value and a name without quoting or encoding.
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CHUNK_NUMBER = /^[1-9][0-9]*$/;

/** True when `name` is the name of a chunk cookie of the cookie `base` (`<base>C<n>`). */
export function isChunkCookieName(base: string, name: string): boolean {
  return (
    name.startsWith(`${base}${CHUNK_SUFFIX}`) &&
    CHUNK_NUMBER.test(name.slice(base.length + CHUNK_SUFFIX.length))
  );
}

/** One cookie to write: `name=value` plus the caller's attributes. */
export interface PlannedCookie {
  name: string;
  value: string;
}

/** How the caller's Set-Cookie headers are measured. */
export type CookieChunkPlanOptions = {
  /** Longest `name=value; attributes` per cookie. Default {@link DEFAULT_COOKIE_CHUNK_SIZE}. */
  chunkSize?: number;
  /** Throw rather than plan more chunks than this. Default {@link DEFAULT_MAX_COOKIE_CHUNKS}. */
  maxChunks?: number;
} & (
  | {
      /** Length of everything the header carries after the value, including the leading "; ". */
      attributesLength: number;
      formatSetCookie?: never;
    }
  | {
      /** Formats the full header value (`name=value; Path=/; ...`); must write the value verbatim. */
      formatSetCookie: (name: string, value: string) => string;
      attributesLength?: never;
    }
);

/** Why a chunked cookie on a request could not be reassembled. */
export type ChunkedCookieReadError = 'missing-chunk' | 'too-many-chunks' | 'malformed-count';

/** A reassembled value, or why there is none. */
export type ChunkedCookieReadResult = { value: string } | { error: ChunkedCookieReadError };

/**
 * Plans the cookies that carry `value`: the cookie itself when `name=value; <attributes>` fits in
 * `chunkSize`, otherwise `name=chunks-N` followed by `nameC1` … `nameCN`, each of which fits.
 *
 * @param value a cookie-safe value (e.g. base64url); an empty value plans one empty cookie.
 * @throws TypeError when the name or value has characters a cookie cannot carry.
 * @throws RangeError when the options are invalid, when the name and attributes leave no room for data,
 * or when more than `maxChunks` chunks would be needed.
 * @example planChunkedCookie('.Nest.TempData', encoded, { attributesLength: '; Path=/; HttpOnly'.length })
 */
export function planChunkedCookie(
  name: string,
  value: string,
  options: CookieChunkPlanOptions,
): PlannedCookie[] {
  const chunkSize = positiveInteger('chunkSize', options.chunkSize ?? DEFAULT_COOKIE_CHUNK_SIZE);
  const maxChunks = positiveInteger('maxChunks', options.maxChunks ?? DEFAULT_MAX_COOKIE_CHUNKS);
  const headerLength = headerMeasure(options);
  if (!COOKIE_NAME.test(name)) {
    throw new TypeError(
      `Cookie name "${name}" is not a valid cookie name. Use letters, digits and !#$%&'*+-.^_\`|~.`,
    );
  }
  if (!COOKIE_VALUE.test(value)) {
    throw new TypeError(
      `Cookie "${name}" value has characters a cookie cannot carry. Encode it (e.g. base64url) before chunking.`,
    );
  }
  // A value that itself starts with "chunks-" would be read back as a chunk count, so it is always chunked.
  if (headerLength(name, value) <= chunkSize && !value.startsWith(CHUNK_COUNT_PREFIX)) {
    return [{ name, value }];
  }

  const chunks: PlannedCookie[] = [];
  for (let offset = 0; offset < value.length;) {
    if (chunks.length === maxChunks) {
      throw new RangeError(
        `Cookie "${name}" (${value.length} characters) needs more than ${maxChunks} chunks of ${chunkSize}. ` +
          'Store less in it (for TempData, use the session provider for large values), or raise maxChunks.',
      );
    }
    const chunkName = `${name}${CHUNK_SUFFIX}${chunks.length + 1}`;
    const room = chunkSize - headerLength(chunkName, '');
    if (room < 1) {
      throw new RangeError(
        `Cookie "${name}": the name and attributes fill the ${chunkSize}-character chunk size, leaving no room ` +
          'for data. Shorten the cookie name or attributes, or raise chunkSize.',
      );
    }
    chunks.push({ name: chunkName, value: value.slice(offset, offset + room) });
    offset += room;
  }

  const main = { name, value: `${CHUNK_COUNT_PREFIX}${chunks.length}` };
  for (const cookie of [main, ...chunks]) {
    if (headerLength(cookie.name, cookie.value) > chunkSize) {
      throw new RangeError(
        `Cookie "${cookie.name}" does not fit in ${chunkSize} characters. ` +
          'Make formatSetCookie write the value verbatim, or shorten the cookie name or attributes.',
      );
    }
  }
  return [main, ...chunks];
}

/**
 * Reads a cookie written by {@link planChunkedCookie} from the request's cookies.
 *
 * @returns `undefined` when the cookie is absent (or empty); `{ value }` for a plain or fully reassembled
 * cookie; `{ error }` when the main cookie says `chunks-N` but N is not a positive integer
 * (`malformed-count`), exceeds `maxChunks` (`too-many-chunks`, decided before any chunk is looked up), or
 * a chunk is absent or empty (`missing-chunk`).
 */
export function readChunkedCookie(
  name: string,
  cookies: Readonly<Record<string, string | undefined>>,
  options: { maxChunks?: number } = {},
): ChunkedCookieReadResult | undefined {
  const maxChunks = positiveInteger('maxChunks', options.maxChunks ?? DEFAULT_MAX_COOKIE_CHUNKS);
  const main = ownCookie(cookies, name);
  if (main === undefined || main === '') return undefined;
  if (!main.startsWith(CHUNK_COUNT_PREFIX)) return { value: main };

  const count = main.slice(CHUNK_COUNT_PREFIX.length);
  if (!CHUNK_NUMBER.test(count)) return { error: 'malformed-count' };
  if (Number(count) > maxChunks) return { error: 'too-many-chunks' };
  const segments: string[] = [];
  for (let index = 1; index <= Number(count); index++) {
    const segment = ownCookie(cookies, `${name}${CHUNK_SUFFIX}${index}`);
    if (segment === undefined || segment === '') return { error: 'missing-chunk' };
    segments.push(segment);
  }
  return { value: segments.join('') };
}

/**
 * Names of the request's chunk cookies `nameC<k>` with `keepCount < k <= maxChunks` (default
 * {@link DEFAULT_MAX_COOKIE_CHUNKS}), in ascending order, so the writer can expire them. Pass the number
 * of chunks just written (0 when writing an unchunked cookie or deleting the cookie, which lists every
 * chunk). Scans the request's cookies rather than trusting the main cookie's count, so chunks orphaned by
 * an earlier, longer value are found too.
 */
export function staleChunkNames(
  name: string,
  cookies: Readonly<Record<string, string | undefined>>,
  keepCount: number,
  options: { maxChunks?: number } = {},
): string[] {
  // Chunks beyond maxChunks were never written by planChunkedCookie: they are the client's invention, and
  // answering each with a deletion would let one request's Cookie header ask for thousands of Set-Cookies.
  const maxChunks = positiveInteger('maxChunks', options.maxChunks ?? DEFAULT_MAX_COOKIE_CHUNKS);
  const prefix = `${name}${CHUNK_SUFFIX}`;
  const stale: { name: string; index: number }[] = [];
  for (const cookieName of Object.keys(cookies)) {
    if (!cookieName.startsWith(prefix)) continue;
    const suffix = cookieName.slice(prefix.length);
    if (CHUNK_NUMBER.test(suffix) && Number(suffix) > keepCount && Number(suffix) <= maxChunks) {
      stale.push({ name: cookieName, index: Number(suffix) });
    }
  }
  return stale.sort((a, b) => a.index - b.index).map((chunk) => chunk.name);
}

function headerMeasure(options: CookieChunkPlanOptions): (name: string, value: string) => number {
  const format = options.formatSetCookie;
  if (format !== undefined) return (name, value) => format(name, value).length;
  const attributesLength = options.attributesLength;
  if (!Number.isInteger(attributesLength) || attributesLength < 0) {
    throw new RangeError(
      `attributesLength must be a non-negative integer, got ${String(attributesLength)}. ` +
        'Pass the length of "; Path=/; HttpOnly; ..." or a formatSetCookie function.',
    );
  }
  return (name, value) => name.length + 1 + value.length + attributesLength;
}

function positiveInteger(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `${option} must be a positive integer, got ${String(value)}. Pass a whole number >= 1.`,
    );
  }
  return value;
}

function ownCookie(cookies: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  // Own properties only: a cookie named "constructor" must not find Object.prototype.constructor.
  if (!Object.hasOwn(cookies, name)) return undefined;
  const value = cookies[name];
  return typeof value === 'string' ? value : undefined;
}
