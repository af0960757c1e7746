import { CookieJar } from '../../support/cookie-jar.js';

/** One browser: its own cookie jar, talking to any instance of a deployment. */
export class BrowserClient {
  readonly jar = new CookieJar();

  constructor(readonly userAgent: string) {}

  async request(
    url: string,
    method: 'GET' | 'POST' = 'GET',
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: this.jar.header(),
        'user-agent': this.userAgent,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    this.jar.update({ headers: { 'set-cookie': res.headers.getSetCookie() } });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** Signs in; throws unless the sign-in answered 200 with the session bound. */
  async login(url: string, user: string): Promise<string> {
    const { id, bound } = await this.signIn(url, user);
    if (!bound) throw new Error(`login bound nothing (session ${id})`);
    return id;
  }

  /** Signs in; `bound` is false when a concurrent sign-in's limit revoked this session before its bind listed it. */
  async signIn(url: string, user: string): Promise<{ id: string; bound: boolean }> {
    const res = await this.request(`${url}/users/login`, 'POST', { user });
    if (res.status !== 200) throw new Error(`login answered ${res.status}: ${JSON.stringify(res.json)}`);
    return { id: res.json.id as string, bound: res.json.bound as boolean };
  }

  async me(url: string): Promise<{ user: string | null; keys: string[] }> {
    return (await this.request(`${url}/users/me`)).json as { user: string | null; keys: string[] };
  }
}
