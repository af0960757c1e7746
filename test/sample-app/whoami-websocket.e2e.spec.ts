/**
 * The sample app's WebSocket contract (DESIGN.md, "Sample app"), on both platforms: a plain WebSocket on
 * `/ws` answers `{"event":"whoami"}` with `{"event":"whoami","data":{"user":...}}` for the session of the
 * handshake's cookie: null before login, the user after it (a new connection presents the new cookie),
 * null again on the same connection after a logout over HTTP.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { WebSocket } from 'ws';
import { CookieJar } from '../support/cookie-jar.js';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess } from './support/sample-app.process.js';

/** A WebSocket client of the sample app with the jar's cookies on its handshake. */
class WhoAmIClient {
  private constructor(private readonly socket: WebSocket) {}

  static async open(app: SampleAppProcess, jar: CookieJar): Promise<WhoAmIClient> {
    const cookie = jar.header();
    const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}/ws`, {
      headers: cookie ? { cookie } : {},
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new WhoAmIClient(socket);
  }

  /** Sends `{"event":"whoami"}` and returns the raw text of the answer. */
  whoami(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no whoami answer within 5 s')), 5_000);
      this.socket.once('message', (raw: Buffer) => {
        clearTimeout(timer);
        resolve(raw.toString());
      });
      this.socket.send(JSON.stringify({ event: 'whoami' }));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

async function post(app: SampleAppProcess, jar: CookieJar, path: string, form: Record<string, string> = {}) {
  const res = await fetch(`${app.url}${path}`, {
    method: 'POST',
    headers: { cookie: jar.header() },
    body: new URLSearchParams(form),
    redirect: 'manual',
  });
  jar.update({ headers: { 'set-cookie': res.headers.getSetCookie() } });
  expect(res.status).toBe(302);
}

const answer = (user: string | null) => JSON.stringify({ event: 'whoami', data: { user } });

describe.each(SAMPLE_APP_PLATFORMS)('sample app on %s: whoami over the /ws WebSocket', (platform) => {
  let app: SampleAppProcess;
  const clients: WhoAmIClient[] = [];
  const open = async (jar: CookieJar) => {
    const client = await WhoAmIClient.open(app, jar);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    await ensureBuilt();
    app = await SampleAppProcess.start({ env: { HTTP_ADAPTER: platform } });
  }, BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await app.stop();
  });

  test('null before login, the user after login (new connection), null after logout (same connection)', async () => {
    const jar = new CookieJar();
    const anonymous = await open(jar);
    expect(await anonymous.whoami()).toBe(answer(null));

    await post(app, jar, '/login', { user: 'The Doctor' });
    expect(await anonymous.whoami()).toBe(answer(null)); // its handshake had no cookie
    const signedIn = await open(jar);
    expect(await signedIn.whoami()).toBe(answer('The Doctor'));

    await post(app, jar, '/logout');
    expect(await signedIn.whoami()).toBe(answer(null));
  });
});
