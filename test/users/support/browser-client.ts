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

  async login(url: string, user: string): Promise<string> {
    const res = await this.request(`${url}/users/login`, 'POST', { user });
    if (res.status !== 200) throw new Error(`login answered ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json.id as string;
  }

  async me(url: string): Promise<{ user: string | null; keys: string[] }> {
    return (await this.request(`${url}/users/me`)).json as { user: string | null; keys: string[] };
  }
}
