/**
 * Issue 22 in the sample app, over HTTP: two instances on one Redis with the same SESSION_SECRETS.
 * `GET /account/sessions` lists where the user is signed in, `POST /account/sessions/:id/revoke` and
 * `POST /account/sessions/revoke-others` sign devices out, on whichever instance their next request lands.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { RedisServerProcess } from '../support/redis/index.js';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { SampleAppProcess } from './support/sample-app.process.js';
import { CookieJar } from '../support/cookie-jar.js';

interface Device {
  id: string;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  userAgent: string;
}

/** A browser without a browser: its own cookie jar and user agent, no redirects followed. */
class DeviceClient {
  readonly jar = new CookieJar();
  constructor(readonly userAgent: string) {}

  async send(app: SampleAppProcess, path: string, form?: Record<string, string>) {
    const res = await fetch(`${app.url}${path}`, {
      method: form ? 'POST' : 'GET',
      headers: { cookie: this.jar.header(), 'user-agent': this.userAgent, accept: 'application/json' },
      body: form ? new URLSearchParams(form) : undefined,
      redirect: 'manual',
    });
    this.jar.update({ headers: { 'set-cookie': res.headers.getSetCookie() } });
    return { status: res.status, location: res.headers.get('location'), body: await res.text() };
  }

  async signIn(app: SampleAppProcess, user: string): Promise<void> {
    const res = await this.send(app, '/login', { user });
    expect([res.status, res.location]).toEqual([302, '/account']);
  }

  async devices(app: SampleAppProcess): Promise<{ status: number; user?: string; sessions?: Device[] }> {
    const res = await this.send(app, '/account/sessions');
    return { status: res.status, ...(JSON.parse(res.body) as { user?: string; sessions?: Device[] }) };
  }
}

describe('sample app: who is signed in where (two instances, one Redis)', () => {
  let redis: RedisServerProcess;
  let a: SampleAppProcess;
  let b: SampleAppProcess;

  beforeAll(async () => {
    const [server] = await Promise.all([RedisServerProcess.start(), ensureBuilt()]);
    redis = server;
    const env = {
      REDIS_URL: redis.url,
      SESSION_SECRETS: randomBytes(32).toString('base64url'),
      APP_NAME: 'acct',
    };
    [a, b] = await Promise.all([SampleAppProcess.start({ env }), SampleAppProcess.start({ env })]);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('GET /account/sessions is 401 JSON for a visitor who is not signed in', async () => {
    const res = await new DeviceClient('Anon/1').send(a, '/account/sessions');
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ statusCode: 401 });
  });

  test('lists every device of the user with the contract fields; revoke one, then all others', async () => {
    const laptop = new DeviceClient('Laptop/1.0');
    const phone = new DeviceClient('Phone/2.0');
    const tablet = new DeviceClient('Tablet/3.0');
    // Listed oldest first: distinct sign-in milliseconds (equal times would order by the random id).
    const tick = () => new Promise((resolve) => setTimeout(resolve, 3));
    await laptop.signIn(a, 'rose');
    await tick();
    await phone.signIn(b, 'rose');
    await tick();
    await tablet.signIn(a, 'rose');
    await new DeviceClient('Other/1').signIn(b, 'martha');

    const listed = await laptop.devices(b);
    expect(listed.status).toBe(200);
    expect(listed.user).toBe('rose');
    expect(listed.sessions!.map((s) => [s.userAgent, s.current])).toEqual([
      ['Laptop/1.0', true],
      ['Phone/2.0', false],
      ['Tablet/3.0', false],
    ]);
    for (const s of listed.sessions!) {
      expect(Object.keys(s).sort()).toEqual(['createdAt', 'current', 'id', 'lastSeenAt', 'userAgent']);
      expect(new Date(s.createdAt).toISOString()).toBe(s.createdAt);
      expect(new Date(s.lastSeenAt).toISOString()).toBe(s.lastSeenAt);
    }
    const phoneId = listed.sessions![1].id;

    const revoked = await laptop.send(a, `/account/sessions/${phoneId}/revoke`, {});
    expect([revoked.status, revoked.location]).toEqual([302, '/account']);
    expect((await phone.devices(b)).status).toBe(401);
    expect((await laptop.devices(a)).sessions!.map((s) => s.userAgent)).toEqual(['Laptop/1.0', 'Tablet/3.0']);

    const others = await tablet.send(b, '/account/sessions/revoke-others', {});
    expect([others.status, others.location]).toEqual([302, '/account']);
    expect((await laptop.devices(b)).status).toBe(401);
    expect((await tablet.devices(a)).sessions!.map((s) => [s.userAgent, s.current])).toEqual([
      ['Tablet/3.0', true],
    ]);
    // The other user was not touched.
    expect((await redis.admin().keys('{acct_user_*}_Sessions')).length).toBe(2);
  });

  test('the Account page lists the devices with a sign-out button each; signing out removes the device', async () => {
    const one = new DeviceClient('One/1');
    const two = new DeviceClient('Two/1');
    await one.signIn(a, 'donna');
    await two.signIn(b, 'donna');
    const html = (await one.send(b, '/account')).body;
    expect(html.match(/<tr class='device'/g)).toHaveLength(2);
    expect(html).toContain('Sign out this browser');
    expect(html).toContain('Sign out this device');
    expect(html).toContain("action='/account/sessions/revoke-others'");

    expect((await two.send(a, '/logout', {})).status).toBe(302);
    expect((await one.devices(a)).sessions!.map((s) => s.userAgent)).toEqual(['One/1']);
  });
});
