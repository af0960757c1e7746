/**
 * TempData values across the round trip: what may be stored, and the versioned byte format that keeps
 * every value's type (a Date comes back as a Date, a date-looking string stays a string).
 *
 * Format, version 1: UTF-8 JSON `{"v":1,"d":{<key>:<value>,...}}`. Strings, booleans, null and finite
 * numbers other than -0 are written as themselves; arrays as arrays. A Date is the tag `{"$d":<epoch ms>}`,
 * and NaN, Infinity, -Infinity and -0 are `{"$n":"NaN"}` etc. Tags are the only objects with a key that
 * starts with exactly one `$`: in user objects every key that starts with `$` gets one more `$` on the way
 * out and loses it on the way back, so no user data can be read as a tag. TempData keys themselves (the
 * keys of `d`) are never interpreted and are written as they are.
 */

import { TempDataFormatError } from '../errors/temp-data.errors.js';

/** Version written by {@link encodeTempData}; the only one {@link decodeTempData} reads. */
export const TEMP_DATA_FORMAT_VERSION = 1;

/**
 * Deepest nesting of arrays and objects a TempData value may have: 64 containers inside each other.
 * Enforced by {@link assertTempDataValue} and by {@link decodeTempData}, so neither can exhaust the stack.
 */
export const TEMP_DATA_MAX_DEPTH = 64;

const SUPPORTED = 'TempData holds string, number, boolean, null, Date and arrays/plain objects of those.';
const HINT_LOAD_AGAIN = 'Store an id and load the object again instead.';
const DATE_TAG = '$d';
const NUMBER_TAG = '$n';
// ECMAScript's time value range, so every stored epoch is a valid Date.
const MAX_EPOCH_MS = 8.64e15;

type PathSegment = string | number;

/** Where the walk is, for error messages that point into the value. */
interface WalkContext {
  readonly key: string;
  readonly path: PathSegment[];
  readonly ancestors: Set<object>;
}

/**
 * Checks that `value` can be stored in TempData under `key` and comes back with the same types.
 *
 * @throws TypeError naming the key and the path inside the value, e.g.
 * `TempData value "Message" at .items[2] is a function; ...`, for undefined (TempDataDictionary treats a
 * top-level undefined as delete before calling this), functions, symbols, bigints, class instances (Map,
 * Set, RegExp, custom classes), invalid Dates, cycles, symbol keys and nesting deeper than
 * {@link TEMP_DATA_MAX_DEPTH}.
 */
export function assertTempDataValue(key: string, value: unknown): void {
  walk(value, { key, path: [], ancestors: new Set() }, 0);
}

/**
 * What TempData keeps of `value` set under `key`: the value itself when it is a primitive, otherwise a copy (as a later
 * request would read it back), so a change the app makes to its object after `set` neither changes what is saved nor
 * makes the save fail; with a copy, its encoding (see {@link encodeTempDataValue}).
 *
 * @throws TypeError as {@link assertTempDataValue}.
 */
export function tempDataSnapshot(key: string, value: unknown): { value: unknown; encoded?: string } {
  if (typeof value !== 'object' || value === null) {
    assertTempDataValue(key, value);
    return { value };
  }
  const encoded = encodeTempDataValue(key, value);
  return { value: decodeValue(JSON.parse(encoded), 0), encoded };
}

/**
 * One value's encoding (as it appears inside {@link encodeTempData}'s output): what a copy taken at `set` is
 * compared with to tell a value changed in place since.
 *
 * @throws TypeError (as {@link assertTempDataValue}) when the value cannot be stored.
 */
export function encodeTempDataValue(key: string, value: unknown): string {
  const out: string[] = [];
  walk(value, { key, path: [], ancestors: new Set() }, 0, out);
  return out.join('');
}

/**
 * Encodes TempData entries in the versioned format described at the top of this module.
 *
 * @throws TypeError (as {@link assertTempDataValue}) when a value cannot be stored.
 * @example encodeTempData(new Map([['Message', 'Customer Ada added']]))
 */
export function encodeTempData(entries: Iterable<[string, unknown]>): Uint8Array {
  const out: string[] = [`{"v":${TEMP_DATA_FORMAT_VERSION},"d":{`];
  let first = true;
  for (const [key, value] of entries) {
    if (typeof key !== 'string') {
      throw new TypeError(`TempData keys must be strings, got ${typeof key}. Use a string key.`);
    }
    out.push(first ? '' : ',', JSON.stringify(key), ':');
    walk(value, { key, path: [], ancestors: new Set() }, 0, out);
    first = false;
  }
  out.push('}}');
  return new TextEncoder().encode(out.join(''));
}

/**
 * Decodes bytes written by {@link encodeTempData}. All or nothing: either every entry is returned with
 * its original type, or a {@link TempDataFormatError} is thrown.
 *
 * @throws TempDataFormatError on any malformed input, and never anything else.
 */
export function decodeTempData(bytes: Uint8Array): Map<string, unknown> {
  try {
    return decodeDocument(bytes);
  } catch (error) {
    if (error instanceof TempDataFormatError) throw error;
    throw new TempDataFormatError('it could not be read', { cause: error });
  }
}

/** Validates `value` and, when `out` is given, appends its encoding. One walk for both, so they agree. */
function walk(value: unknown, ctx: WalkContext, depth: number, out?: string[]): void {
  switch (typeof value) {
    case 'string':
      out?.push(JSON.stringify(value));
      return;
    case 'boolean':
      out?.push(value ? 'true' : 'false');
      return;
    case 'number':
      out?.push(encodeNumber(value));
      return;
    case 'undefined':
      return fail(ctx, 'is undefined', 'Use null, or leave the property out.');
    case 'function':
      return fail(ctx, 'is a function', HINT_LOAD_AGAIN);
    case 'symbol':
      return fail(ctx, 'is a symbol', 'Store a string instead.');
    case 'bigint':
      return fail(ctx, 'is a bigint', 'Store it as a string (value.toString()) and parse it when reading.');
  }
  if (value === null) {
    out?.push('null');
    return;
  }
  const object = value as object;
  const prototype = Object.getPrototypeOf(object) as object | null;
  if (prototype === Date.prototype) {
    const time = (object as Date).getTime();
    if (Number.isNaN(time)) return fail(ctx, 'is an invalid Date', 'Check the date before storing it.');
    if (Reflect.ownKeys(object).length > 0) {
      return fail(ctx, 'is a Date with properties of its own, which it would lose', 'Store them beside it.');
    }
    out?.push(`{"${DATE_TAG}":${time}}`);
    return;
  }
  const isArray = Array.isArray(object) && prototype === Array.prototype;
  if (!isArray && prototype !== Object.prototype && prototype !== null) {
    return failClassInstance(ctx, object);
  }
  if (ctx.ancestors.has(object)) {
    return fail(ctx, 'is a cycle (it contains itself)', 'Remove the back-reference, or store ids instead.');
  }
  if (depth >= TEMP_DATA_MAX_DEPTH) {
    return fail(ctx, `is nested more than ${TEMP_DATA_MAX_DEPTH} levels deep`, 'Flatten the value.');
  }
  ctx.ancestors.add(object);
  if (isArray) walkArray(object as unknown[], ctx, depth, out);
  else walkObject(object as Record<string, unknown>, ctx, depth, out);
  ctx.ancestors.delete(object);
}

function walkArray(array: unknown[], ctx: WalkContext, depth: number, out?: string[]): void {
  // Named properties beside the items (Object.assign([1], { total: 1 })) would be lost; holes are caught below.
  // Own keys: the items, `length`, and nothing else (a symbol key included).
  if (Reflect.ownKeys(array).length > array.length + 1) {
    return fail(ctx, 'is an array with named properties, which it would lose', 'Store an object instead.');
  }
  out?.push('[');
  for (let index = 0; index < array.length; index++) {
    if (index > 0) out?.push(',');
    ctx.path.push(index);
    walk(array[index], ctx, depth + 1, out);
    ctx.path.pop();
  }
  out?.push(']');
}

function walkObject(object: Record<string, unknown>, ctx: WalkContext, depth: number, out?: string[]): void {
  const symbol = Object.getOwnPropertySymbols(object).find((s) =>
    Object.prototype.propertyIsEnumerable.call(object, s),
  );
  if (symbol !== undefined) {
    return fail(ctx, `has a symbol key (${String(symbol)})`, 'Use string keys.');
  }
  out?.push('{');
  let first = true;
  for (const name of Object.keys(object)) {
    out?.push(first ? '' : ',', JSON.stringify(name.startsWith('$') ? `$${name}` : name), ':');
    ctx.path.push(name);
    walk(object[name], ctx, depth + 1, out);
    ctx.path.pop();
    first = false;
  }
  out?.push('}');
}

function encodeNumber(value: number): string {
  if (Number.isNaN(value)) return `{"${NUMBER_TAG}":"NaN"}`;
  if (value === Infinity) return `{"${NUMBER_TAG}":"Infinity"}`;
  if (value === -Infinity) return `{"${NUMBER_TAG}":"-Infinity"}`;
  // JSON.stringify(-0) is "0": without the tag the sign would be lost.
  if (Object.is(value, -0)) return `{"${NUMBER_TAG}":"-0"}`;
  return JSON.stringify(value);
}

function failClassInstance(ctx: WalkContext, object: object): never {
  if (object instanceof Map) {
    return fail(ctx, 'is a Map', 'Convert it first: Object.fromEntries(map) or [...map].');
  }
  if (object instanceof Set) return fail(ctx, 'is a Set', 'Convert it to an array first: [...set].');
  if (object instanceof RegExp) return fail(ctx, 'is a RegExp', 'Store its source string instead.');
  if (object instanceof Date) return fail(ctx, 'is a subclass of Date', 'Store a plain Date instead.');
  return fail(ctx, `is an instance of ${className(object)}`, HINT_LOAD_AGAIN);
}

function className(object: object): string {
  try {
    const name: unknown = (object as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `class ${name}` : 'a class';
  } catch {
    // Proxies and exotic objects may throw on property access; the message must still be built.
    return 'a class';
  }
}

function fail(ctx: WalkContext, problem: string, hint: string): never {
  const at = ctx.path.length > 0 ? ` at ${formatPath(ctx.path)}` : '';
  throw new TypeError(`TempData value "${ctx.key}"${at} ${problem}; ${SUPPORTED} ${hint}`);
}

function formatPath(path: PathSegment[]): string {
  return path
    .map((segment) => {
      if (typeof segment === 'number') return `[${segment}]`;
      return /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
    })
    .join('');
}

function decodeDocument(bytes: Uint8Array): Map<string, unknown> {
  if (!(bytes instanceof Uint8Array)) throw new TempDataFormatError('expected bytes (a Uint8Array)');
  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text, so JSON.parse rejects it: the encoder never writes one.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    throw new TempDataFormatError('it is not valid UTF-8', { cause: error });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new TempDataFormatError('it is not valid JSON', { cause: error });
  }
  if (!isJsonObject(document)) throw new TempDataFormatError('expected an object with "v" and "d"');
  const fields = Object.keys(document);
  if (fields.length !== 2 || !('v' in document) || !('d' in document)) {
    throw new TempDataFormatError('expected exactly the fields "v" and "d"');
  }
  if (document.v !== TEMP_DATA_FORMAT_VERSION) {
    throw new TempDataFormatError(
      `version ${JSON.stringify(document.v)} is not supported (this build reads version ${TEMP_DATA_FORMAT_VERSION})`,
    );
  }
  const data = document.d;
  if (!isJsonObject(data)) throw new TempDataFormatError('"d" must be an object');
  const entries = new Map<string, unknown>();
  for (const key of Object.keys(data)) entries.set(key, decodeValue(data[key], 0));
  return entries;
}

function decodeValue(json: unknown, depth: number): unknown {
  switch (typeof json) {
    case 'string':
    case 'boolean':
      return json;
    case 'number':
      // JSON.parse turns an out-of-range literal such as 1e400 into Infinity; the encoder never writes one.
      if (!Number.isFinite(json)) throw new TempDataFormatError('a number is out of range');
      return json;
  }
  if (json === null) return null;
  if (Array.isArray(json)) {
    checkDepth(depth);
    return json.map((item) => decodeValue(item, depth + 1));
  }
  const object = json as Record<string, unknown>;
  const names = Object.keys(object);
  const tag = names.find(isTagName);
  if (tag !== undefined) {
    if (names.length !== 1) throw new TempDataFormatError(`tag "${tag}" must be the only key of its object`);
    return decodeTag(tag, object[tag]);
  }
  checkDepth(depth);
  const result: Record<string, unknown> = {};
  for (const name of names) {
    // Keys that reach here either do not start with "$" or start with "$$" (an escaped user key).
    defineEntry(result, name.startsWith('$') ? name.slice(1) : name, decodeValue(object[name], depth + 1));
  }
  return result;
}

function decodeTag(tag: string, payload: unknown): unknown {
  if (tag === DATE_TAG) {
    if (typeof payload !== 'number' || !Number.isInteger(payload) || Math.abs(payload) > MAX_EPOCH_MS) {
      throw new TempDataFormatError('a Date tag must hold an integer time within the Date range');
    }
    return new Date(payload);
  }
  if (tag === NUMBER_TAG) {
    switch (payload) {
      case 'NaN':
        return NaN;
      case 'Infinity':
        return Infinity;
      case '-Infinity':
        return -Infinity;
      case '-0':
        return -0;
    }
    throw new TempDataFormatError('a number tag must hold "NaN", "Infinity", "-Infinity" or "-0"');
  }
  throw new TempDataFormatError(`unknown tag ${JSON.stringify(tag)}`);
}

function isTagName(name: string): boolean {
  return name.startsWith('$') && !name.startsWith('$$');
}

function checkDepth(depth: number): void {
  if (depth >= TEMP_DATA_MAX_DEPTH) {
    throw new TempDataFormatError(`a value is nested more than ${TEMP_DATA_MAX_DEPTH} levels deep`);
  }
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function defineEntry(target: Record<string, unknown>, name: string, value: unknown): void {
  // Plain assignment of "__proto__" would replace the prototype instead of creating the key.
  if (name === '__proto__') {
    Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[name] = value;
  }
}
