import { CookieJar, setCookies } from '../../support/cookie-jar.js';
import { send, type RawResponse } from './http-client.js';
import type { TempDataOp } from './temp-data-test.app.js';

export const TEMP_DATA_COOKIE = '.Nest.TempData';
export const SESSION_COOKIE = '.Nest.Session';

/** The attributes of every TempData cookie written with the defaults over plain HTTP. */
export const DEFAULT_ATTRIBUTES = ['Path=/', 'HttpOnly', 'SameSite=Lax'];
/** The attributes of a Set-Cookie that deletes a default TempData cookie. */
export const DELETE_ATTRIBUTES = [
  'Path=/',
  'Expires=Thu, 01 Jan 1970 00:00:00 GMT',
  'HttpOnly',
  'SameSite=Lax',
];

/** One Set-Cookie header, split. */
export interface ParsedSetCookie {
  header: string;
  name: string;
  value: string;
  attributes: string[];
}

export function parseSetCookie(header: string): ParsedSetCookie {
  const [pair, ...attributes] = header.split(';');
  const eq = pair.indexOf('=');
  return {
    header,
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    attributes: attributes.map((a) => a.trim()),
  };
}

/** The Set-Cookie headers of the TempData cookie and its chunks (`<name>C<n>`), in response order. */
export function tempDataSetCookies(
  res: { headers: Record<string, unknown> },
  name = TEMP_DATA_COOKIE,
): ParsedSetCookie[] {
  const chunk = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}C\\d+$`);
  return setCookies(res)
    .map(parseSetCookie)
    .filter((c) => c.name === name || chunk.test(c.name));
}

/** True when the header deletes its cookie (empty value, expired in 1970). */
export function isDeletion(cookie: ParsedSetCookie): boolean {
  return cookie.value === '' && cookie.attributes.includes('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
}

/**
 * A browser: keeps the cookies it is given (following deletions) and sends them back. Uses the
 * large-header client, so chunked cookies of any test size fit.
 */
export class Browser {
  /** `jar`: another browser's, to be the same visitor on another instance. */
  constructor(
    private readonly url: string,
    readonly jar = new CookieJar(),
  ) {}

  async get(path: string, headers?: Record<string, string>): Promise<RawResponse> {
    return this.keep(await send(this.url, 'GET', path, { cookie: this.jar.header(), headers }));
  }

  async post(path: string, json: unknown = {}, headers?: Record<string, string>): Promise<RawResponse> {
    return this.keep(await send(this.url, 'POST', path, { cookie: this.jar.header(), json, headers }));
  }

  /** Submits an HTML form (application/x-www-form-urlencoded); redirects are not followed. */
  async submit(path: string, form: Record<string, string>): Promise<RawResponse> {
    return this.keep(await send(this.url, 'POST', path, { cookie: this.jar.header(), form }));
  }

  /** Runs the steps against this browser's TempData; the response body is `{ results }`. */
  async ops(...ops: TempDataOp[]): Promise<RawResponse & { body: { results: unknown[] } }> {
    const res = await this.post('/td/ops', { ops });
    return res as RawResponse & { body: { results: unknown[] } };
  }

  /** Like {@link ops}, but fails the test unless the answer is 200; returns the results. */
  async run(...ops: TempDataOp[]): Promise<unknown[]> {
    const res = await this.ops(...ops);
    if (res.status !== 200) throw new Error(`POST /td/ops answered ${res.status}: ${res.text}`);
    return res.body.results;
  }

  private keep(res: RawResponse): RawResponse {
    this.jar.update(res);
    return res;
  }
}
