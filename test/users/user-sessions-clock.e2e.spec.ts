import type { INestApplication } from '@nestjs/common';
import { ManualClock, MemorySessionStore, type SessionModuleOptions } from 'nest-session-state';
import { RedisServerProcess } from '../support/redis/index.js';
import { gate, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { BrowserClient } from './support/browser-client.js';
import { SECRETS, startUsersApp } from './support/user-sessions.stores.js';

/**
 * maxSessionsPerUser revokes the oldest sessions by binding time. On Redis that time is Redis's clock (each
 * instance's estimate of it), not the binding instance's own: an instance whose clock is behind does not
 * make its fresh sign-in the "oldest" session and sign it out at once.
 */
describe('user sessions on Redis: binding times across instances whose clocks disagree', () => {
  let server: RedisServerProcess;
  const apps: INestApplication[] = [];
  let x: string;
  let y: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    const options = {
      secrets: SECRETS,
      redis: { host: server.host, port: server.port, applicationName: 'clock' },
      users: { maxSessionsPerUser: 1 },
    };
    for (const started of [await startUsersApp(options), await startUsersApp(options)])
      apps.push(started.app);
    [x, y] = await Promise.all(apps.map((app) => app.getUrl()));
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await server.stop();
  });

  it('the newest sign-in stays, though it was bound on an instance whose clock is a minute behind', async () => {
    const user = 'skewed@example.test';
    const first = new BrowserClient('First/1');
    const second = new BrowserClient('Second/1');
    await first.login(x, user);
    const realNow = Date.now;
    Date.now = () => realNow() - 60_000; // the wall clock the second sign-in's instance reads
    let secondId: string;
    try {
      secondId = await second.login(y, user);
    } finally {
      Date.now = realNow;
    }
    expect((await second.me(y)).user).toBe(user);
    expect((await first.me(x)).user).toBeNull(); // the older one was revoked
    const listed = await second.request(`${x}/users/sessions`);
    expect((listed.json.sessions as { id: string }[]).map((s) => s.id)).toEqual([secondId]);
  });

  it('a listing on an instance whose clock is a minute ahead shows the sign-in as just seen, not a minute from now', async () => {
    const user = 'ahead@example.test';
    const browser = new BrowserClient('Ahead/1');
    const before = Date.now();
    await browser.login(x, user);
    const realNow = Date.now;
    Date.now = () => realNow() + 60_000; // the wall clock the listing instance reads
    let listed: { json: Record<string, unknown> };
    try {
      listed = await browser.request(`${y}/users/sessions`);
    } finally {
      Date.now = realNow;
    }
    const [session] = listed.json.sessions as { createdAt: string; lastSeenAt: string }[];
    const [createdAt, lastSeenAt] = [Date.parse(session.createdAt), Date.parse(session.lastSeenAt)];
    // Both in Redis's clock (this machine's): the sign-in, made a moment ago, was last seen a moment ago.
    expect(createdAt).toBeGreaterThanOrEqual(before - 1_000);
    expect(lastSeenAt).toBeGreaterThanOrEqual(createdAt);
    expect(lastSeenAt).toBeLessThan(Date.now() + 5_000);
  });
});

/**
 * A sign-out whose session.lock expired while it ran (a stall): the store refuses its writes (409). Before, the
 * index entry went first and the refused abandon left the session stored and bound: signed in, listed nowhere.
 */
describe('user sessions: a sign-out under session.lock whose lock expired while it ran', () => {
  const target = onManualClock({ session: { lock: { ttl: 1_000, acquireTimeout: 2_000 } } });
  const clock = target.clock;
  let url: string;
  beforeAll(() => (url = target.url));

  it('is refused whole: the session stays signed in and listed, and a retry signs it out', async () => {
    const user = 'stalled-sign-out@example.test';
    const keeper = new BrowserClient('Keeper/1');
    const browser = new BrowserClient('Leaving/1');
    await keeper.login(url, user);
    const id = await browser.login(url, user);
    const signingOut = browser.request(`${url}/users/slow-logout?gate=stalled-sign-out`, 'POST');
    await gate('stalled-sign-out').reached(1); // it holds the lock
    clock.advance(5_000); // its lock's TTL passed on the store's clock
    gate('stalled-sign-out').release();
    const late = await signingOut;
    expect(late.status).toBe(409);
    expect(late.json).toMatchObject({ code: 'SESSION_LOCK_LOST' });

    expect((await browser.request(`${url}/users/sessions`)).status).toBe(200); // still signed in...
    const listed = (await keeper.request(`${url}/users/sessions`)).json.sessions as { id: string }[];
    expect(listed.map((s) => s.id)).toContain(id); // ...and listed, so revocable
    expect((await browser.request(`${url}/users/logout`, 'POST')).status).toBe(200);
    expect((await browser.request(`${url}/users/sessions`)).status).toBe(401);
  });
});

/**
 * maxSessionsPerUser keeps the newest sessions, the binding one included: a bind whose own binding time is older
 * than another session bound meanwhile (sign-ins at once; here the store's clock set back between them) revokes
 * itself. Before, that bind resolved true: the route said "signed in" and answered with a cookie of a revoked session.
 */
describe('user sessions: a bind that maxSessionsPerUser revokes at once', () => {
  const target = onManualClock({ users: { maxSessionsPerUser: 1 } });
  const clock = target.clock;
  let url: string;
  beforeAll(() => (url = target.url));

  it('resolves false, its session abandoned (no session cookie kept); the newer one stays signed in', async () => {
    const user = 'self-revoked@example.test';
    const newer = new BrowserClient('Newer/1');
    const older = new BrowserClient('Older/1');
    const newerId = await newer.login(url, user);
    clock.advance(-60_000); // the next binding time is a minute older than the one bound already
    const signIn = await older.signIn(url, user);
    expect(signIn.bound).toBe(false);
    expect(older.jar.header()).toBe(''); // the cookie of the revoked session was deleted, not kept
    expect((await older.me(url)).user).toBeNull();
    expect((await newer.me(url)).user).toBe(user);
    const listed = (await newer.request(`${url}/users/sessions`)).json.sessions as { id: string }[];
    expect(listed.map((s) => s.id)).toEqual([newerId]);
  });
});

/**
 * lastSeenAt is derived from the session's expiry minus `session.idleTimeout`: exact on the memory store, whose
 * clock sets both the binding time and every slide of the expiry.
 */
describe('user sessions: lastSeenAt on the memory store', () => {
  const target = onManualClock({});
  const clock = target.clock;
  let url: string;
  beforeAll(() => (url = target.url));

  it('is the time of the last request that loaded the session: createdAt plus the minutes since, exactly', async () => {
    const user = 'last-seen@example.test';
    const keeper = new BrowserClient('Keeper/1');
    const browser = new BrowserClient('Seen/1');
    await keeper.login(url, user);
    const id = await browser.login(url, user);
    clock.advance(7 * 60_000);
    expect((await browser.me(url)).user).toBe(user); // loads (and slides) the session 7 minutes after sign-in
    clock.advance(3 * 60_000);
    const listed = (await keeper.request(`${url}/users/sessions`)).json.sessions as {
      id: string;
      createdAt: string;
      lastSeenAt: string;
    }[];
    const seen = listed.find((s) => s.id === id)!;
    expect(Date.parse(seen.lastSeenAt) - Date.parse(seen.createdAt)).toBe(7 * 60_000);
    // The listing request loaded the keeper's own session: seen now, 10 minutes after its sign-in.
    const own = listed.find((s) => s.id !== id)!;
    expect(Date.parse(own.lastSeenAt) - Date.parse(own.createdAt)).toBe(10 * 60_000);
  });
});

/** One app on a memory store whose clock the test moves, started and closed around the calling describe block. */
function onManualClock(extra: SessionModuleOptions): { readonly clock: ManualClock; readonly url: string } {
  const clock = new ManualClock(Date.now());
  let app: INestApplication | undefined;
  let url = '';
  beforeAll(async () => {
    ({ app, url } = await startUsersApp({
      secrets: SECRETS,
      store: new MemorySessionStore({ clock }),
      ...extra,
    }));
  });
  afterAll(async () => {
    releaseAllGates();
    await app?.close();
  });
  return {
    clock,
    get url() {
      return url;
    },
  };
}
