import type { INestApplication } from '@nestjs/common';
import { RedisServerProcess } from '../support/redis/index.js';
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
