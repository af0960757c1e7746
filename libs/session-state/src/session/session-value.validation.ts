const MAX_DEPTH = 64;
/** Buffer's own toJSON (`{ type, data }`: bytes as a list of numbers), which does not make a Buffer a leaf. */
const BUFFER_TO_JSON = (Buffer.prototype as { toJSON?: unknown }).toJSON;

const at = (path: string) => (path ? ` at ${path}` : '');

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'bigint') return 'a BigInt';
  if (value instanceof Map) return 'a Map';
  if (value instanceof Set) return 'a Set';
  if (value instanceof WeakMap || value instanceof WeakSet) return 'a weak collection';
  if (value instanceof Promise) return 'a Promise';
  return typeof value;
}

/** Collections and promises: JSON cannot hold them at all. */
function isUnserializableObject(value: object): boolean {
  return (
    value instanceof Map ||
    value instanceof Set ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof Promise
  );
}

function isBinary(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer;
}

/**
 * Objects of JavaScript's own classes, which the checks below judge as they are (class-transformer, which
 * `set` applies to the app's class instances, would turn a Map or an Error into a plain object).
 */
export function isBuiltInObject(value: object): boolean {
  return (
    isUnserializableObject(value) ||
    isBinary(value) ||
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Error
  );
}

/**
 * Objects that JSON.stringify turns into something else without an error: `{}` for a RegExp or an Error,
 * index-keyed objects for binary data, `null` for an invalid Date. The message says what to store instead.
 */
function lossyObject(node: object): string | undefined {
  if (node instanceof Date) {
    return Number.isNaN(node.getTime()) ? 'an invalid Date, which JSON stores as null' : undefined;
  }
  if (isBinary(node)) {
    return 'binary data, which JSON cannot hold as bytes. Use session.setBytes() for bytes, or convert it (e.g. to base64) first';
  }
  if (node instanceof RegExp) return 'a RegExp, which JSON stores as {}. Store its source and flags';
  if (node instanceof Error) return 'an Error, which JSON stores as {}. Store its message';
  return undefined;
}

/**
 * Throws a TypeError naming the session key (and the path inside the value) when `value` cannot
 * be stored as JSON without silently losing data: functions, symbols, BigInt, Map/Set, cycles,
 * binary data, RegExp, Error, an invalid Date, more than 64 levels. What JSON itself defines is kept:
 * a Date becomes its ISO string, `undefined` properties are left out (`null` in an array), `-0` is `0`.
 * An object with a `toJSON` (other than Buffer's) is a leaf here: JSON.stringify decides what it becomes,
 * and the caller refuses a value that it turns into nothing or throws on. `lossy: false` skips the checks of
 * what JSON would change (for a class instance before class-transformer converts it: `@Exclude`, `@Transform`).
 */
export function assertJsonSerializable(
  key: string,
  value: unknown,
  { lossy = true }: { lossy?: boolean } = {},
): void {
  const seen = new Set<object>();
  const visit = (node: unknown, path: string, depth: number): void => {
    if (node === null || typeof node === 'string' || typeof node === 'boolean') return;
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) {
        throw new TypeError(
          `Session value "${key}"${at(path)} is ${node}, which JSON cannot hold. Store a finite number or null.`,
        );
      }
      return;
    }
    if (
      typeof node === 'function' ||
      typeof node === 'symbol' ||
      typeof node === 'bigint' ||
      (typeof node === 'object' && isUnserializableObject(node))
    ) {
      throw new TypeError(
        `Session value "${key}"${at(path)} is ${describe(node)}, which cannot be serialised. ` +
          'Store plain data (strings, numbers, booleans, arrays, objects) or convert it first (e.g. BigInt to string, Map to an object).',
      );
    }
    if (node === undefined) return;
    if (typeof node !== 'object') return;
    // A Date, or an object with a toJSON of its own (an Error subclass, say), is what toJSON makes of it: a
    // leaf, checked by set() on what JSON.stringify returns. Not Buffer's built-in one: bytes as a list.
    const toJSON = (node as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function' && toJSON !== BUFFER_TO_JSON) {
      const invalid = node instanceof Date ? lossyObject(node) : undefined;
      if (invalid !== undefined) throw new TypeError(`Session value "${key}"${at(path)} is ${invalid}.`);
      return;
    }
    // depth counts from 0: the 65th nested level is refused, as TempData refuses it.
    if (depth >= MAX_DEPTH)
      throw new TypeError(`Session value "${key}" is nested deeper than ${MAX_DEPTH} levels.`);
    if (seen.has(node)) {
      throw new TypeError(`Session value "${key}"${at(path)} contains a cycle, which cannot be serialised.`);
    }
    const changed = lossy ? lossyObject(node) : undefined;
    if (changed !== undefined) {
      throw new TypeError(`Session value "${key}"${at(path)} is ${changed}.`);
    }
    seen.add(node);
    if (Array.isArray(node)) node.forEach((item, i) => visit(item, `${path}[${i}]`, depth + 1));
    else for (const [k, v] of Object.entries(node)) visit(v, `${path}.${k}`, depth + 1);
    seen.delete(node);
  };
  if (value === undefined) {
    throw new TypeError(
      `Session value "${key}" is undefined. Use session.remove("${key}") to delete a value.`,
    );
  }
  visit(value, '', 0);
}
