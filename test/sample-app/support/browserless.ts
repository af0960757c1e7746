import { CookieJar } from '../../support/cookie-jar.js';
import type { SampleAppProcess } from './sample-app.process.js';

/** A client with one cookie jar and no redirects followed, talking to whichever instance it is given. */
export class Browserless {
  readonly jar = new CookieJar();

  async request(
    app: SampleAppProcess,
    path: string,
    init: { method?: string; form?: Record<string, string>; accept?: string } = {},
  ): Promise<{ status: number; location: string | null; body: string; setCookies: string[] }> {
    const headers: Record<string, string> = {};
    if (init.accept) headers.accept = init.accept;
    const cookie = this.jar.header();
    if (cookie) headers.cookie = cookie;
    const response = await fetch(`${app.url}${path}`, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      headers,
      body: init.form ? new URLSearchParams(init.form) : undefined,
      redirect: 'manual',
    });
    this.jar.update({ headers: { 'set-cookie': response.headers.getSetCookie() } });
    return {
      status: response.status,
      location: response.headers.get('location'),
      body: await response.text(),
      setCookies: response.headers.getSetCookie(),
    };
  }
}
