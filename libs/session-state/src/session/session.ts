import { generateSessionId } from '../protection/session-key.generator.js';
import {
  SessionLimitExceededError,
  SessionNotLoadedError,
  SessionUnavailableError,
} from '../errors/session.errors.js';
import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { loadClassTransformer } from './class-transformer.loader.js';
import { SessionChangeTracker } from './session-change.tracker.js';
import { assertJsonSerializable, isBuiltInObject } from './session-value.validation.js';
import { isWellFormedText } from './well-formed-text.js';
import type { SessionData } from './stores/session-store.interface.js';
import { keyInMessage } from '../errors/key-in-message.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** Stored field holding the session id (user keys may not start with NUL). */
export const SESSION_ID_FIELD = '\u0000id';
/** Stored field naming the user a session is bound to (`UserSessions`; reserved: user keys cannot start with NUL). */
export const SESSION_USER_FIELD = '\u0000uid';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Size limits applied at `set` (to what the request loaded) and at commit (to what is stored). */
export interface SessionLimits {
  readonly maxValueBytes: number;
  readonly maxSessionBytes: number;
  readonly maxKeys: number;
}

/** What a {@link Session} needs from the request that owns it. */
export interface SessionHost {
  load(): Promise<void>;
  commit(): Promise<void>;
  /** Called before the first value of a new session is stored; throws when it cannot be established. */
  beforeEstablish(): void;
  /** Called before every change; throws once the session can no longer be saved. */
  beforeChange(): void;
  /**
   * Called when `remove` found no such value: a removal from a session that moved away meanwhile (the request's
   * cookie is stale) is refused at commit rather than answered as done. Optional (a read-only host has none).
   */
  removedNothing?(): void;
  regenerate(): void;
  abandon(): void;
  readonly limits: SessionLimits;
  /** The store key the session's data is under once stored (never logged, never shown to apps). */
  storeKey?(): string | undefined;
  /** The store key the request found the session under, if any (never logged, never shown to apps). */
  loadedStoreKey?(): string | undefined;
  /** The request's failure that refuses every commit without trying it, if any. */
  refusingFailure?(): Error | undefined;
}

type Constructor<T> = new (...args: never[]) => T;

/**
 * A visitor's session: ASP.NET Core's `ISession` (its `DistributedSession`) for Nest. Values are bytes underneath, with
 * string, Int32 and JSON helpers. Reads and writes are synchronous once the session is loaded
 * (`@Session()` loads it; elsewhere `await session.load()`); changes are committed before the
 * response headers leave, writing only the keys that changed. Keys are case-sensitive.
 *
 * @example
 * \@Get()
 * index(\@Session() session: Session) {
 *   if (!session.getString('Name')) session.setString('Name', 'The Doctor');
 *   session.setInt32('Age', 73);
 *   return { name: session.getString('Name'), age: session.getInt32('Age') };
 * }
 */
@HiddenFromLogs<DistributedSession>((session) =>
  session.isLoaded
    ? { isAvailable: session.isAvailable, keys: session.keys }
    : { isLoaded: false, isAvailable: session.isAvailable },
)
export class DistributedSession {
  private data: SessionData | undefined;
  private available = true;
  private bytes = 0;
  private clearCount = 0;
  /** @internal */
  readonly changes = new SessionChangeTracker(() => this.loaded());

  /** Created by the library for each request (apps receive it from `@Session()` or `SessionAccessor`). */
  constructor(private readonly host: SessionHost) {}

  /** False when the store could not be reached: the session then reads as empty and is not saved. */
  get isAvailable(): boolean {
    return this.available;
  }

  /** True once the values are loaded (or known to be a new, empty session). */
  get isLoaded(): boolean {
    return this.data !== undefined;
  }

  /**
   * The session's id: a random value stored in the session, distinct from the key in the cookie,
   * so it can be logged without exposing the session. Created on first read.
   */
  get id(): string {
    const data = this.loaded();
    const stored = data.get(SESSION_ID_FIELD);
    if (stored) return decoder.decode(stored);
    const id = generateSessionId();
    this.write(SESSION_ID_FIELD, encoder.encode(id));
    return id;
  }

  /**
   * The keys of the stored values, sorted (by UTF-16 code unit, as `Array.prototype.sort`): every store
   * gives the same order (PostgreSQL's jsonb and large Redis hashes keep no insertion order).
   */
  get keys(): string[] {
    const out: string[] = [];
    // Reserved fields (the id, the bound user) start with NUL: they are not the app's keys.
    for (const key of this.loaded().keys()) if (key.charCodeAt(0) !== 0) out.push(key);
    return out.sort();
  }

  /** Loads the session from the store (once; later calls return at once). Throws when the store is down. */
  load(): Promise<void> {
    if (!this.available) return Promise.reject(new SessionUnavailableError('load'));
    return this.data ? Promise.resolve() : this.host.load();
  }

  /** Writes the changes now instead of at the end of the request. Throws when the store is down. */
  commit(): Promise<void> {
    return this.host.commit();
  }

  /**
   * Moves the session to a new key, keeping its data: call it at login, so a key planted before
   * login (session fixation) is worthless after it. Applied at commit; the old key is deleted.
   */
  regenerate(): void {
    this.loaded();
    this.host.regenerate();
  }

  /** Ends the session: its stored data and its cookie are deleted at commit. */
  abandon(): void {
    const data = this.loaded();
    this.host.abandon(); // first: when it refuses (the commit ran), the session is left as it was
    this.clearCount++;
    data.clear();
    this.bytes = 0;
    this.changes.reset();
  }

  has(key: string): boolean {
    return this.loaded().has(key);
  }

  /** The raw bytes of a value (ASP.NET's TryGetValue): a copy, changing it changes nothing stored. */
  getBytes(key: string): Uint8Array | undefined {
    const bytes = this.loaded().get(key);
    return bytes === undefined ? undefined : Uint8Array.from(bytes);
  }

  /** Stores raw bytes (ASP.NET's Set). */
  setBytes(key: string, value: Uint8Array): void {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`Session value "${key}" must be a Uint8Array for setBytes (got ${typeof value}).`);
    }
    this.write(this.checkKey(key), Uint8Array.from(value));
  }

  /**
   * @internal `setBytes` for a value the library writes back (session-backed TempData): one over
   * `maxValueBytes` is accepted when it is no larger than the value it replaces (stored under a larger limit),
   * so what was read there can still be taken out of it.
   */
  replaceBytes(key: string, value: Uint8Array): void {
    this.write(this.checkKey(key), value, true);
  }

  getString(key: string): string | undefined {
    const bytes = this.loaded().get(key);
    return bytes === undefined ? undefined : decoder.decode(bytes);
  }

  setString(key: string, value: string): void {
    if (typeof value !== 'string') {
      throw new TypeError(`Session value "${key}" must be a string for setString (got ${typeof value}).`);
    }
    if (!isWellFormedText(value)) {
      // UTF-8 has no lone surrogate: TextEncoder would store U+FFFD in its place.
      throw new TypeError(
        `Session value "${key}" for setString contains a lone UTF-16 surrogate, which UTF-8 cannot hold. ` +
          'Store it with session.set(), which keeps it as a JSON escape.',
      );
    }
    this.write(this.checkKey(key), encoder.encode(value));
  }

  /** A 32-bit integer stored by {@link setInt32} (4 bytes, big-endian, as ASP.NET). */
  getInt32(key: string): number | undefined {
    const bytes = this.loaded().get(key);
    if (bytes === undefined || bytes.byteLength !== 4) return undefined;
    return (bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]; // big-endian, signed
  }

  setInt32(key: string, value: number): void {
    if (!Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
      throw new RangeError(
        `Session value "${key}" must be a 32-bit integer for setInt32 (got ${String(value)}).`,
      );
    }
    const bytes = new Uint8Array(4);
    bytes[0] = value >>> 24;
    bytes[1] = value >>> 16;
    bytes[2] = value >>> 8;
    bytes[3] = value;
    this.write(this.checkKey(key), bytes);
  }

  /**
   * A JSON value; with a class, an instance of it built by class-transformer.
   * @example const cart = session.get<Cart>('cart') ?? { items: [] };
   * @example const user = session.get('user', UserDto); // instanceof UserDto
   */
  get<T = unknown>(key: string, type?: Constructor<T>): T | undefined {
    const text = this.getString(key);
    if (text === undefined) return undefined;
    let plain: unknown;
    try {
      plain = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!type) return plain as T;
    const transformer = loadClassTransformer();
    if (!transformer) {
      throw new SessionConfigurationError(
        `session.get("${key}", ${type.name}) needs class-transformer: npm install class-transformer`,
      );
    }
    return transformer.plainToInstance(type, plain);
  }

  /**
   * Stores `value` as JSON (a class instance without its own `toJSON` through class-transformer's
   * `instanceToPlain` when installed). Throws a TypeError naming the key for values JSON cannot hold
   * (functions, symbols, BigInt, Map, cycles) or would change (bytes, RegExp, Error, an invalid Date).
   */
  set(key: string, value: unknown): void {
    this.checkKey(key);
    let plain = value;
    const proto: unknown = value !== null && typeof value === 'object' ? Object.getPrototypeOf(value) : null;
    // An app's class instance without a toJSON of its own goes through class-transformer when installed.
    const transformer =
      proto !== null &&
      proto !== Object.prototype &&
      proto !== Array.prototype &&
      typeof (value as { toJSON?: unknown }).toJSON !== 'function' &&
      !isBuiltInObject(value as object)
        ? loadClassTransformer()
        : null;
    if (transformer) {
      // First what class-transformer must not see: it would call a function field, turn a Map into an object,
      // recurse into a cycle. What JSON would change is judged on what it makes (@Exclude, @Transform apply).
      assertJsonSerializable(key, value, { lossy: false });
      try {
        plain = transformer.instanceToPlain(value);
      } catch (error) {
        throw new TypeError(
          `Session value "${key}" could not be converted by class-transformer: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    assertJsonSerializable(key, plain);
    let json: string | undefined;
    try {
      json = JSON.stringify(plain);
    } catch (error) {
      // A toJSON() that returns a BigInt or a cycle: name the key, as the checks above do.
      throw new TypeError(`Session value "${key}" cannot be serialised: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (json === undefined) {
      throw new TypeError(
        `Session value "${key}" serialises to nothing (its toJSON() returned undefined). Use session.remove("${key}") to delete a value.`,
      );
    }
    this.write(key, encoder.encode(json));
  }

  remove(key: string): void {
    this.removeField(this.checkKey(key));
  }

  /** Removes a field, reserved ones included (the id, the bound user): `remove` takes the app's keys only. */
  private removeField(key: string): void {
    const data = this.loaded();
    if (!data.has(key)) {
      this.host.removedNothing?.();
      return;
    }
    this.host.beforeChange();
    this.bytes -= entrySize(key, data.get(key)!);
    data.delete(key);
    this.changes.recordRemove(key);
  }

  /** Removes every value (the stored session is deleted at commit). */
  clear(): void {
    const data = this.loaded();
    this.host.beforeChange();
    // Clearing a session bound to a user: the commit applies only while it is still that session (a
    // revocation meanwhile is not undone by it), as every commit of a bound session does.
    const boundId = data.has(SESSION_USER_FIELD) ? data.get(SESSION_ID_FIELD) : undefined;
    this.clearCount++;
    data.clear();
    this.bytes = 0;
    this.changes.recordClear(boundId && decoder.decode(boundId));
  }

  /**
   * @internal How many times `clear()` or `abandon()` emptied this session in this request: TempData kept in the
   * session tells from it whether what it loaded went with them.
   */
  get clears(): number {
    return this.clearCount;
  }

  /** @internal The store key the request found this session under, if any (UserSessions: a binding made before). */
  get loadedStoreKey(): string | undefined {
    return this.host.loadedStoreKey?.();
  }

  /** @internal The store key of this session once stored (UserSessions indexes it). */
  get storeKey(): string | undefined {
    return this.host.storeKey?.();
  }

  /**
   * @internal The request's failure that refuses every commit of this session without trying it (an earlier commit
   * failed and that failure is the request's answer): a commit rejected with it wrote nothing.
   */
  get refusingFailure(): Error | undefined {
    return this.host.refusingFailure?.();
  }

  /**
   * @internal Takes into this session what `stored` holds for the keys not in `own`: values that differ
   * from this copy's, and the removal of keys `stored` lacks; recorded like changes, without the limits
   * (the store held them already). True when anything changed. After `regenerate()`, what other requests
   * committed under the old key while this one ran.
   */
  absorb(stored: SessionData, own: ReadonlySet<string>): boolean {
    const data = this.loaded();
    let changed = false;
    for (const [key, value] of stored) {
      const mine = data.get(key);
      if (
        own.has(key) ||
        (mine !== undefined && Buffer.from(mine.buffer, mine.byteOffset, mine.byteLength).equals(value))
      )
        continue;
      data.set(key, value);
      this.bytes += entrySize(key, value) - (mine === undefined ? 0 : entrySize(key, mine));
      this.changes.recordSet(key, value);
      changed = true;
    }
    for (const [key, mine] of [...data]) {
      if (own.has(key) || stored.has(key)) continue;
      data.delete(key);
      this.bytes -= entrySize(key, mine);
      this.changes.recordRemove(key);
      changed = true;
    }
    return changed;
  }

  /** @internal The reserved (NUL-prefixed) fields the session holds: its id, the bound user. */
  reservedFields(): SessionData {
    const reserved: SessionData = new Map();
    for (const [field, value] of this.loaded()) if (field.charCodeAt(0) === 0) reserved.set(field, value);
    return reserved;
  }

  /** @internal A reserved (NUL-prefixed) field, such as the bound user. */
  getReserved(field: string): Uint8Array | undefined {
    return this.loaded().get(field);
  }

  /** @internal Sets (or with undefined removes) a reserved field, recorded like any change. */
  setReserved(field: string, value: Uint8Array | undefined): void {
    if (value === undefined) this.removeField(field);
    else this.write(field, value);
  }

  /** @internal */
  attach(data: SessionData | undefined, available: boolean): void {
    this.data = data ?? new Map();
    this.available = available;
    this.bytes = 0;
    for (const [key, value] of this.data) this.bytes += entrySize(key, value);
  }

  /** @internal True when nothing but (possibly) the id is stored. */
  get isEmpty(): boolean {
    const data = this.loaded();
    return data.size === 0 || (data.size === 1 && data.has(SESSION_ID_FIELD));
  }

  private loaded(): SessionData {
    if (!this.data) throw new SessionNotLoadedError();
    return this.data;
  }

  private checkKey(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.charCodeAt(0) === 0) {
      throw new TypeError(
        `Session keys must be non-empty strings not starting with NUL (got ${JSON.stringify(key)}).`,
      );
    }
    // Redis stores keys as UTF-8 (a lone surrogate becomes U+FFFD, so two keys would meet in one field)
    // and PostgreSQL's jsonb refuses one: refused on every store alike, so a key works on each.
    if (!isWellFormedText(key)) {
      throw new TypeError(
        `Session keys must be well-formed UTF-16 strings (got ${JSON.stringify(key)}, which has a lone surrogate).`,
      );
    }
    return key;
  }

  /**
   * @internal Throws the `SessionLimitExceededError` that setting `key` to `value` would throw, changing
   * nothing (session-backed TempData checks its one session value at its own `set`). `what` names the
   * value in the message; `noLargerAllowed` as {@link replaceBytes} writes it.
   */
  checkLimits(key: string, value: Uint8Array, what: string, noLargerAllowed = false): void {
    this.nextBytesAfter(this.loaded(), key, value, what, noLargerAllowed);
  }

  private write(key: string, value: Uint8Array, noLargerAllowed = false): void {
    const data = this.loaded();
    this.host.beforeChange();
    const nextBytes = this.nextBytesAfter(data, key, value, describeField(key), noLargerAllowed);
    if (this.isEmpty && key !== SESSION_ID_FIELD) this.host.beforeEstablish();
    data.set(key, value);
    this.bytes = nextBytes;
    this.changes.recordSet(key, value);
  }

  /** The session's size once `key` is `value`; throws when that passes a limit. */
  private nextBytesAfter(
    data: SessionData,
    key: string,
    value: Uint8Array,
    what: string,
    noLargerAllowed = false,
  ): number {
    const { maxValueBytes, maxSessionBytes, maxKeys } = this.host.limits;
    const previous = data.get(key);
    if (
      value.byteLength > maxValueBytes &&
      !(noLargerAllowed && previous !== undefined && value.byteLength <= previous.byteLength)
    ) {
      throw new SessionLimitExceededError(
        'maxValueBytes',
        `${what} is ${value.byteLength} bytes, over the limit of ${maxValueBytes} (session.maxValueBytes).`,
      );
    }
    const nextBytes = this.bytes - (previous ? entrySize(key, previous) : 0) + entrySize(key, value);
    // Only growth is refused: a session already over the limit (a lower limit, or concurrent
    // writes the store refused later) can always be made smaller.
    if (nextBytes > maxSessionBytes && nextBytes > this.bytes) {
      throw new SessionLimitExceededError(
        'maxSessionBytes',
        `${what} would grow the session to ${nextBytes} bytes, over the limit of ${maxSessionBytes} (session.maxSessionBytes).`,
      );
    }
    // The id is not one of the app's keys (the stores do not count it either): reading `id` of a session that
    // holds maxKeys values stores it without a 413.
    if (
      !previous &&
      key !== SESSION_ID_FIELD &&
      data.size >= maxKeys + (data.has(SESSION_ID_FIELD) ? 1 : 0)
    ) {
      throw new SessionLimitExceededError(
        'maxKeys',
        `${what} would exceed ${maxKeys} keys (session.maxKeys).`,
      );
    }
    return nextBytes;
  }
}

/** How a limit's message names a field: the reserved ones by what they are, not by their NUL-prefixed names. */
function describeField(key: string): string {
  if (key === SESSION_ID_FIELD) return 'The session id';
  // One of the session's keys, as the stores count it: a session needs a free key to be signed in.
  if (key === SESSION_USER_FIELD) return "UserSessions.bind()'s binding (it takes one of the session's keys)";
  return `Session value "${keyInMessage(key)}"`;
}

function entrySize(key: string, value: Uint8Array): number {
  return key.length + value.byteLength;
}
