import { isChunkCookieName } from '../temp-data/chunking-cookie.js';
import type {
  CookieSecurePolicy,
  SessionLockOptions,
  SessionModuleOptions,
  StateCookieOptions,
} from './session-module.options.js';
import type { PlatformRequest } from '../http/http-exchange.js';
import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { DEFAULT_TEMP_DATA_COOKIE_BYTES } from '../temp-data/temp-data-cookie.budget.js';

// Re-exported for the module's own files, which import it from here.
export { SessionConfigurationError };
import { rejectUnknownRedisOptions } from '../cache/redis/redis-option-names.check.js';
import { unknownSessionOptionNames } from './session-option-names.check.js';
import { describeOptionValue } from '../options/option-names.check.js';
import { storeConflict } from './session-store.conflicts.js';
import { pluggableShapeProblem } from './pluggable-shapes.check.js';

export interface ResolvedCookieOptions {
  readonly name: string;
  readonly path: string;
  readonly domain?: string;
  readonly httpOnly: boolean;
  readonly sameSite: 'lax' | 'strict' | 'none';
  readonly securePolicy: CookieSecurePolicy;
  readonly isEssential: boolean;
}

export interface ResolvedSessionOptions {
  readonly cookie: ResolvedCookieOptions;
  readonly idleTimeout: number;
  readonly ioTimeout: number;
  readonly maxValueBytes: number;
  readonly maxSessionBytes: number;
  readonly maxKeys: number;
  readonly lock?: Required<SessionLockOptions>;
  readonly slideSkipWindow: number;
  readonly tempData: {
    readonly provider: 'cookie' | 'session';
    readonly cookie: ResolvedCookieOptions;
    readonly maxCookieBytes: number;
  };
  readonly hasConsent: (request: PlatformRequest) => boolean;
  /** undefined: decided at startup from what injects the accessors. */
  readonly asyncContext?: boolean;
}

const fail = (message: string): never => {
  throw new SessionConfigurationError(message);
};

/** The longest delay Node's timers run (about 24.8 days): a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration option in whole milliseconds (stores such as Redis take no fraction: `4.1 * 60_000` would fail every
 * write there), at most `max`.
 */
function duration(
  name: string,
  value: number | undefined,
  fallback: number,
  { allowZero = false, max = Number.MAX_SAFE_INTEGER }: { allowZero?: boolean; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    fail(
      `SessionModule option ${name} must be a positive number of milliseconds (got ${describeOptionValue(value)}).`,
    );
  }
  if (!Number.isInteger(value)) {
    fail(
      `SessionModule option ${name} must be a whole number of milliseconds (got ${value}): round it, ` +
        `e.g. Math.round(${value}) = ${Math.round(value)}.`,
    );
  }
  if (value > max) {
    fail(
      `SessionModule option ${name} must be at most ${max} ms (got ${value})` +
        (max === MAX_TIMER_MS ? ': about 24.8 days, the longest delay a Node timer runs.' : '.') +
        (allowZero ? ' 0 disables it.' : ''),
    );
  }
  return value;
}

function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0)
    fail(`SessionModule option ${name} must be a positive integer (got ${describeOptionValue(value)}).`);
  return value;
}

/** Longest cookie name accepted: a cookie's name and value share the 4096 bytes a browser keeps. */
const MAX_COOKIE_NAME_LENGTH = 256;
/** Longest cookie path accepted (RFC 6265bis: browsers ignore attribute values over 1024 bytes). */
const MAX_COOKIE_PATH_LENGTH = 1024;
/** Longest cookie domain accepted: a DNS name's limit (RFC 1035). */
const MAX_COOKIE_DOMAIN_LENGTH = 253;

/**
 * What the TempData cookie takes from `session.cookie` where `tempData.cookie` leaves it out: how strong it is. Not
 * where it goes (`path`, `domain`): a `__Host-` TempData name needs neither, and a narrower path would leave the
 * TempData cookies already at `/` behind.
 */
const INHERITED_COOKIE_OPTIONS = ['httpOnly', 'sameSite', 'securePolicy'] as const;

function cookie(
  prefix: string,
  options: StateCookieOptions | undefined,
  defaultName: string,
): ResolvedCookieOptions {
  const o = options ?? {};
  const name = o.name ?? defaultName;
  if (typeof name !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    fail(`SessionModule option ${prefix}.name must be a valid cookie name (got ${JSON.stringify(name)}).`);
  }
  if (name.length > MAX_COOKIE_NAME_LENGTH) {
    fail(
      `SessionModule option ${prefix}.name is ${name.length} characters long: at most ${MAX_COOKIE_NAME_LENGTH}, ` +
        'since browsers keep at most 4096 bytes of name and value per cookie.',
    );
  }
  const sameSite = o.sameSite ?? 'lax';
  if (!['lax', 'strict', 'none'].includes(sameSite)) {
    fail(
      `SessionModule option ${prefix}.sameSite must be 'lax', 'strict' or 'none' (got ${JSON.stringify(sameSite)}).`,
    );
  }
  const securePolicy = o.securePolicy ?? 'sameAsRequest';
  if (!['sameAsRequest', 'always', 'none'].includes(securePolicy)) {
    fail(
      `SessionModule option ${prefix}.securePolicy must be 'sameAsRequest', 'always' or 'none' (got ${JSON.stringify(securePolicy)}).`,
    );
  }
  if (sameSite === 'none' && securePolicy === 'none') {
    fail(
      `SessionModule option ${prefix}: sameSite 'none' needs Secure cookies; set securePolicy to 'always' or 'sameAsRequest'.`,
    );
  }
  const path = o.path ?? '/';
  // RFC 6265's path-value: any character but controls and ";", here printable ASCII (others are percent-encoded).
  if (
    typeof path !== 'string' ||
    !/^\/[\x21-\x3A\x3C-\x7E]*$/.test(path) ||
    path.length > MAX_COOKIE_PATH_LENGTH
  ) {
    fail(
      `SessionModule option ${prefix}.path must start with / and hold only printable ASCII characters other than ; ` +
        `and spaces (percent-encode the others, e.g. encodeURI('/ä')), at most ${MAX_COOKIE_PATH_LENGTH} ` +
        `(got ${JSON.stringify(path)}).`,
    );
  }
  if (
    o.domain !== undefined &&
    (typeof o.domain !== 'string' ||
      !/^[A-Za-z0-9.-]+$/.test(o.domain) ||
      o.domain.length > MAX_COOKIE_DOMAIN_LENGTH)
  ) {
    fail(
      `SessionModule option ${prefix}.domain must be a host name, at most ${MAX_COOKIE_DOMAIN_LENGTH} characters ` +
        `(got ${JSON.stringify(o.domain)}).`,
    );
  }
  for (const flag of ['httpOnly', 'isEssential'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') {
      fail(
        `SessionModule option ${prefix}.${flag} must be true or false (got ${describeOptionValue(o[flag])}).`,
      );
    }
  }
  checkNamePrefix(prefix, name, securePolicy, path, o.domain);
  return {
    name,
    path,
    domain: o.domain,
    httpOnly: o.httpOnly ?? true,
    sameSite,
    securePolicy,
    isEssential: o.isEssential ?? false,
  };
}

/**
 * The TempData cookie's options: its own, and for the attributes it leaves out ({@link INHERITED_COOKIE_OPTIONS})
 * the session cookie's, so an app that makes its session cookie Secure or Strict gets a TempData cookie as strong.
 * Not the name, nor `isEssential` (TempData is not essential unless the app says so), nor its path and domain.
 */
function inheritCookieOptions(
  session: StateCookieOptions | undefined,
  tempData: StateCookieOptions | undefined,
): StateCookieOptions | undefined {
  const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;
  if (!isObject(session) || (tempData !== undefined && !isObject(tempData))) return tempData;
  const merged: Record<string, unknown> = { ...tempData };
  for (const name of INHERITED_COOKIE_OPTIONS)
    if (merged[name] === undefined && session[name] !== undefined) merged[name] = session[name];
  return merged;
}

/**
 * Browsers keep a `__Secure-` cookie only when it is Secure, and a `__Host-` one only when it is also
 * on path `/` without a domain (RFC 6265bis, cookie prefixes); any other such cookie is dropped and the
 * session would never stick. Names are compared case-insensitively, as browsers now do.
 */
function checkNamePrefix(
  prefix: string,
  name: string,
  securePolicy: string,
  path: string,
  domain: string | undefined,
): void {
  const lower = name.toLowerCase();
  const host = lower.startsWith('__host-');
  if (!host && !lower.startsWith('__secure-')) return;
  const kind = host ? '__Host-' : '__Secure-';
  if (securePolicy === 'none') {
    fail(
      `SessionModule option ${prefix}.name: a ${kind} cookie must be Secure, or browsers drop it; ` +
        `set ${prefix}.securePolicy to 'always' (or 'sameAsRequest' behind HTTPS).`,
    );
  }
  if (host && (path !== '/' || domain !== undefined)) {
    fail(
      `SessionModule option ${prefix}.name: a __Host- cookie must have path '/' and no domain, or browsers ` +
        `drop it; remove ${prefix}.path and ${prefix}.domain, or use a name without the prefix.`,
    );
  }
}

/** Cookies beyond this never come back: the library does not parse Cookie headers over 64 KiB. */
const MAX_TEMP_DATA_COOKIE_BYTES = 48 * 1024;
/** Room for a short message: below it nearly every TempData value would be refused (413). */
const MIN_TEMP_DATA_COOKIE_BYTES = 512;

function maxCookieBytes(value: number | undefined): number {
  const bytes = count('tempData.maxCookieBytes', value, DEFAULT_TEMP_DATA_COOKIE_BYTES);
  if (bytes < MIN_TEMP_DATA_COOKIE_BYTES) {
    fail(
      `SessionModule option tempData.maxCookieBytes must be at least ${MIN_TEMP_DATA_COOKIE_BYTES} (got ${bytes}): ` +
        'the encrypted cookie and its attributes take ~100 bytes before any value, so every TempData.set would be ' +
        `refused. The default is ${DEFAULT_TEMP_DATA_COOKIE_BYTES}.`,
    );
  }
  if (bytes > MAX_TEMP_DATA_COOKIE_BYTES) {
    fail(
      `SessionModule option tempData.maxCookieBytes must be at most ${MAX_TEMP_DATA_COOKIE_BYTES} (got ${bytes}): ` +
        "larger cookies would not fit in a request's Cookie header. Use tempData: { provider: 'session' } for large TempData.",
    );
  }
  return bytes;
}

function slideSkipWindow(value: number | undefined, idleTimeout: number): number {
  const window = duration('session.slideSkipWindow', value, Math.floor(idleTimeout / 20), {
    allowZero: true,
  });
  if (window >= idleTimeout) {
    fail(
      `SessionModule option session.slideSkipWindow (${window} ms) must be shorter than session.idleTimeout ` +
        `(${idleTimeout} ms): a session would expire while its reads skip the slide. The default is idleTimeout / 20.`,
    );
  }
  return window;
}

/**
 * Refuses, before anything connects, option names the module does not know (a typo in options built
 * from configuration would otherwise be ignored) and store options that exclude each other.
 */
function checkShape(options: SessionModuleOptions): void {
  const unknown = unknownSessionOptionNames(options);
  if (unknown !== undefined) fail(unknown);
  rejectUnknownRedisOptions(options.redis, 'redis');
  const conflict = storeConflict(options);
  if (conflict !== undefined) fail(conflict);
  const shape = pluggableShapeProblem(options);
  if (shape !== undefined) fail(shape);
}

/**
 * Validates the module options and fills in the defaults. Unknown names fail with the name they most
 * likely meant (SessionConfigurationError; RedisConfigurationError under `redis`).
 */
export function resolveSessionOptions(options: SessionModuleOptions): ResolvedSessionOptions {
  checkShape(options);
  const s = options.session ?? {};
  const idleTimeout = duration('session.idleTimeout', s.idleTimeout, 20 * 60_000);
  const lock = s.lock === true ? {} : s.lock || undefined;
  const provider = options.tempData?.provider ?? 'cookie';
  if (provider !== 'cookie' && provider !== 'session') {
    fail(
      `SessionModule option tempData.provider must be 'cookie' or 'session' (got ${JSON.stringify(provider)}).`,
    );
  }
  const sessionCookie = cookie('session.cookie', s.cookie, '.Nest.Session');
  const tempDataCookie = cookie(
    'tempData.cookie',
    inheritCookieOptions(s.cookie, options.tempData?.cookie),
    '.Nest.TempData',
  );
  if (sessionCookie.name === tempDataCookie.name) {
    fail('SessionModule options session.cookie.name and tempData.cookie.name must differ.');
  }
  if (isChunkCookieName(tempDataCookie.name, sessionCookie.name)) {
    fail(
      `SessionModule option session.cookie.name "${sessionCookie.name}" is the name of a chunk of the TempData cookie ` +
        `(tempData.cookie.name "${tempDataCookie.name}" + C<n>): TempData would overwrite or delete the session ` +
        'cookie. Choose a session cookie name that is not the TempData cookie name followed by C and a number.',
    );
  }
  if (options.hasConsent !== undefined && typeof options.hasConsent !== 'function') {
    fail('SessionModule option hasConsent must be a function (request) => boolean.');
  }
  if (options.hasConsent?.constructor.name === 'AsyncFunction') {
    fail(
      'SessionModule option hasConsent is an async function: it returns a Promise, not true or false. Make it ' +
        'synchronous: (request) => boolean, reading the consent cookie from request.headers.cookie.',
    );
  }
  if (options.asyncContext !== undefined && typeof options.asyncContext !== 'boolean') {
    fail(
      `SessionModule option asyncContext must be true or false, or left out to decide from what injects the accessors (got ${describeOptionValue(options.asyncContext)}).`,
    );
  }
  return {
    cookie: sessionCookie,
    idleTimeout,
    ioTimeout: duration('session.ioTimeout', s.ioTimeout, 60_000, { allowZero: true, max: MAX_TIMER_MS }),
    // A maxValueBytes above maxSessionBytes is kept: a session over a lowered limit can still shrink a large value.
    maxValueBytes: count('session.maxValueBytes', s.maxValueBytes, 256 * 1024),
    maxSessionBytes: count('session.maxSessionBytes', s.maxSessionBytes, 1024 * 1024),
    maxKeys: count('session.maxKeys', s.maxKeys, 1000),
    lock: lock && {
      ttl: duration('session.lock.ttl', lock.ttl, 30_000, { max: MAX_TIMER_MS }),
      acquireTimeout: duration('session.lock.acquireTimeout', lock.acquireTimeout, 10_000, {
        max: MAX_TIMER_MS,
      }),
      retryInterval: duration('session.lock.retryInterval', lock.retryInterval, 200, { max: MAX_TIMER_MS }),
    },
    slideSkipWindow: slideSkipWindow(s.slideSkipWindow, idleTimeout),
    tempData: {
      provider,
      cookie: tempDataCookie,
      maxCookieBytes: maxCookieBytes(options.tempData?.maxCookieBytes),
    },
    hasConsent: options.hasConsent ?? (() => true),
    asyncContext: options.asyncContext,
  };
}
