import type { INestApplication } from '@nestjs/common';
import {
  isUserSessionIndexSource,
  SessionStore,
  type MemorySessionStore,
  type SessionChanges,
  type SessionModuleOptions,
} from 'nest-session-state';
import { MemoryUserSessionIndex } from '../../libs/session-state/src/users/memory-user-session.index.js';
import { userIndexKeys } from '../../libs/session-state/src/users/redis/redis-user-session.keys.js';
import { RedisClusterProcess, RedisServerProcess } from '../support/redis/index.js';
import { gate, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { findSetCookie } from '../support/cookie-jar.js';
import { BrowserClient } from './support/browser-client.js';
import { STORES, startUsersApp, type StoreUnderTest } from './support/user-sessions.stores.js';

/**
 * Issue 22: who is signed in where. The same behaviour on every store (memory, Redis with and without
 * the near cache, a 3-master cluster), each time on two app instances sharing the store.
 */
interface Listed {
  id: string;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  metadata: { userAgent: string };
}

const COOKIE = '.Nest.Session';
let users = 0;
const newUser = () => `user-${++users}@example.test`;
let gates = 0;
/** The name of a new gate a slow route waits at (test/support/apps/gated-session.controller.ts). */
const newGate = () => `users-${++gates}`;

describe.each(STORES.map((make) => [make().name, make] as const))('user sessions on %s', (_name, make) => {
  const store: StoreUnderTest = make();
  const running: INestApplication[] = [];
  let a: string;
  let b: string;

  /** Two instances over one new deployment of the store. */
  async function deploy(extra?: SessionModuleOptions): Promise<[string, string, SessionModuleOptions]> {
    const options = store.deployment(extra);
    const first = await startUsersApp(options);
    const second = await startUsersApp(options);
    running.push(first.app, second.app);
    return [first.url, second.url, options];
  }

  const list = async (browser: BrowserClient, url: string) => {
    const res = await browser.request(`${url}/users/sessions`);
    expect(res.status).toBe(200);
    return res.json.sessions as Listed[];
  };

  beforeAll(async () => {
    await store.start();
    [a, b] = await deploy();
  }, 30_000);

  afterAll(async () => {
    releaseAllGates();
    await Promise.all(running.map((app) => app.close()));
    await store.stop();
  });

  it('lists the sessions of a user with what the app recorded, marks the current one, never shows a key', async () => {
    const user = newUser();
    const laptop = new BrowserClient('Laptop/1.0');
    const phone = new BrowserClient('Phone/2.0');
    const laptopId = await laptop.login(a, user);
    // Oldest first: the phone signs in later, also on the memory store's manual clock (equal times
    // would order by the random session id).
    await store.expire(5);
    const phoneId = await phone.login(b, user);
    await new BrowserClient('Other/1.0').login(a, newUser()); // another user's session is not listed

    const seen = await list(laptop, b);
    expect(seen.map((s) => [s.id, s.current, s.metadata.userAgent])).toEqual([
      [laptopId, true, 'Laptop/1.0'],
      [phoneId, false, 'Phone/2.0'],
    ]);
    expect((await list(phone, a)).find((s) => s.current)?.id).toBe(phoneId);
    for (const s of seen) {
      const createdAt = Date.parse(s.createdAt);
      expect(Math.abs(createdAt - Date.now())).toBeLessThan(60_000);
      expect(Date.parse(s.lastSeenAt)).toBeGreaterThanOrEqual(createdAt);
      expect(Date.parse(s.expiresAt)).toBeGreaterThan(Date.parse(s.lastSeenAt));
      // The id is the public session id, never the cookie's protected key nor a part of it.
      expect(laptop.jar.header()).not.toContain(s.id);
      expect(phone.jar.header()).not.toContain(s.id);
    }
  });

  it('lists metadata named "__proto__" or "constructor" as recorded (they were dropped on every store)', async () => {
    const browser = new BrowserClient('Named/1.0');
    // Parsed, so the names are own properties, as the app's JSON body parser gives them.
    const metadata = JSON.parse('{"__proto__":"p","constructor":"c"}') as Record<string, string>;
    const res = await browser.request(`${a}/users/login`, 'POST', { user: newUser(), metadata });
    expect(res.json.bound).toBe(true);
    const [listed] = await list(browser, b);
    // Sorted: PostgreSQL's jsonb keeps no insertion order.
    expect(Object.entries(listed.metadata).sort()).toEqual([
      ['__proto__', 'p'],
      ['constructor', 'c'],
      ['userAgent', 'Named/1.0'],
    ]);
  });

  it("revokes one session: its next request, on either instance, is signed out; the others' are not", async () => {
    const user = newUser();
    const keeper = new BrowserClient('Keeper/1.0');
    const victim = new BrowserClient('Victim/1.0');
    await keeper.login(a, user);
    const victimId = await victim.login(b, user);
    expect((await victim.me(b)).user).toBe(user); // both instances (and a near cache) have seen it
    expect((await victim.me(a)).user).toBe(user);

    const res = await keeper.request(`${a}/users/revoke/${victimId}`, 'POST');
    expect(res.json).toEqual({ revoked: true });

    expect(await victim.me(b)).toEqual({ user: null, keys: [] });
    expect(await victim.me(a)).toEqual({ user: null, keys: [] });
    expect((await keeper.me(b)).user).toBe(user);
    expect((await list(keeper, b)).map((s) => s.id)).not.toContain(victimId);
    // Revoking again, or an id of another user, does nothing.
    expect((await keeper.request(`${b}/users/revoke/${victimId}`, 'POST')).json).toEqual({ revoked: false });
  });

  it("revoking the request's own session with it as current abandons it in this request: the response deletes its cookie", async () => {
    const user = newUser();
    const keeper = new BrowserClient('Keeper/3');
    const browser = new BrowserClient('SignsItselfOut/1');
    await keeper.login(a, user);
    const id = await browser.login(a, user);
    const res = await fetch(`${b}/users/revoke/${id}?current=1`, {
      method: 'POST',
      headers: { cookie: browser.jar.header() },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ revoked: true });
    expect(findSetCookie({ headers: { 'set-cookie': res.headers.getSetCookie() } }, COOKIE)).toMatch(
      /^\.Nest\.Session=;.*Expires=Thu, 01 Jan 1970/i,
    );
    expect(await browser.me(a)).toEqual({ user: null, keys: [] });
    expect((await list(keeper, b)).map((s) => s.id)).not.toContain(id);
  });

  it("revoking through the store's index deletes nothing under a key that now holds a newer session (reused after an expiry)", async () => {
    const user = newUser();
    const browser = new BrowserClient('Reused/1');
    const revokedId = await browser.login(a, user);
    const cookie = browser.jar.header();
    const sessionKey = cookie.slice(cookie.indexOf('=') + 1, cookie.lastIndexOf('.'));
    const store = running[0].get<symbol, SessionStore>(SessionStore, { strict: false });
    if (!isUserSessionIndexSource(store))
      throw new Error(`${store.constructor.name} has no user session index`);
    // The revoked session is gone from its key (as at its expiry) and a newer one, unbound, lives there now.
    await store.remove(sessionKey);
    await store.commit(sessionKey, newSessionChanges({ '\u0000id': 'newer-session', cart: 'items' }), 60_000);

    await store
      .userSessionIndex()
      .revoke(user, [{ sessionId: revokedId, sessionKey, createdAt: 0, metadata: {} }]);

    const stored = await store.load(sessionKey, 60_000);
    expect(decoded(stored, '\u0000id')).toBe('newer-session');
    expect(decoded(stored, 'cart')).toBe('items');
  });

  it('revokes every other session (sign out everywhere else), the current one stays', async () => {
    const user = newUser();
    const browsers = ['One/1', 'Two/1', 'Three/1'].map((agent) => new BrowserClient(agent));
    const ids = [];
    for (const [i, browser] of browsers.entries()) ids.push(await browser.login(i % 2 ? b : a, user));

    const res = await browsers[0].request(`${b}/users/revoke-others`, 'POST');
    expect(res.json).toEqual({ revoked: 2 });
    expect((await browsers[0].me(a)).user).toBe(user);
    expect((await browsers[1].me(a)).user).toBeNull();
    expect((await browsers[2].me(b)).user).toBeNull();
    expect((await list(browsers[0], a)).map((s) => s.id)).toEqual([ids[0]]);
  });

  it('lists every one of concurrent logins of one user on two instances', async () => {
    const user = newUser();
    const browsers = Array.from({ length: 8 }, (_, i) => new BrowserClient(`Racer/${i}`));
    const ids = await Promise.all(browsers.map((browser, i) => browser.login(i % 2 ? b : a, user)));
    const listed = await list(browsers[0], b);
    expect(listed.map((s) => s.id).sort()).toEqual([...ids].sort());
    expect(new Set(listed.map((s) => s.metadata.userAgent)).size).toBe(8);
  });

  it.each([
    ['a delta', ''],
    ['a clear() that sets the sign-in marker again', '&clear=1'],
    ['a regenerate() that moves it to a new key', '&regenerate=1'],
    ['a bind() again, as a device rename does', '&rebind=1'],
    ['an unbind()', '&unbind=1'],
  ])(
    'a request of the revoked session still running when it is revoked cannot bring the session back (%s)',
    async (_what, query) => {
      const user = newUser();
      const keeper = new BrowserClient('Keeper/1.0');
      const victim = new BrowserClient('Victim/1.0');
      await keeper.login(a, user);
      const victimId = await victim.login(b, user);
      expect((await victim.me(b)).user).toBe(user);

      // Loaded before the revocation, commits after it.
      const held = newGate();
      const inFlight = victim.request(`${b}/users/slow-write?gate=${held}${query}`, 'POST');
      await gate(held).reached(1);
      expect((await keeper.request(`${a}/users/revoke/${victimId}`, 'POST')).json).toEqual({ revoked: true });
      gate(held).release();
      const late = await inFlight;
      expect(late.status).toBe(200);
      // It ran as the signed-in user, but its write is not applied; a bind() says it bound nothing.
      expect(late.json).toEqual(query === '&rebind=1' ? { user, bound: false } : { user });

      expect(await victim.me(b)).toEqual({ user: null, keys: [] });
      expect(await victim.me(a)).toEqual({ user: null, keys: [] });
      expect((await list(keeper, b)).map((s) => s.id)).not.toContain(victimId);
    },
  );

  it('a sign-in again of a bound session, moved to its new key when the others are revoked, is signed out: it does not escape', async () => {
    const user = newUser();
    const keeper = new BrowserClient('Keeper/4');
    const device = new BrowserClient('Device/4');
    await keeper.login(a, user);
    const deviceId = await device.login(b, user);
    // Moved to a new key (its entry still names the old one, which is gone), not yet bound there.
    const held = newGate();
    const signingIn = device.request(`${b}/users/slow-relogin?gate=${held}`, 'POST');
    await gate(held).reached(1);
    expect((await keeper.request(`${a}/users/revoke-others`, 'POST')).status).toBe(200);
    gate(held).release();
    const late = await signingIn;
    expect(late.status).toBe(200);
    expect(late.json).toEqual({ bound: false });

    expect(await device.me(a)).toEqual({ user: null, keys: [] });
    expect((await list(keeper, b)).map((s) => s.id)).not.toContain(deviceId);
  });

  it('a late account switch that empties, unbinds and binds a session revoked meanwhile binds nothing', async () => {
    const user = newUser();
    const other = newUser();
    const keeper = new BrowserClient('Keeper/2.0');
    const victim = new BrowserClient('Victim/2.0');
    await keeper.login(a, user);
    const victimId = await victim.login(b, user);
    const held = newGate();
    const inFlight = victim.request(
      `${b}/users/slow-switch?gate=${held}&to=${encodeURIComponent(other)}`,
      'POST',
    );
    await gate(held).reached(1);
    expect((await keeper.request(`${a}/users/revoke/${victimId}`, 'POST')).json).toEqual({ revoked: true });
    gate(held).release();
    const late = await inFlight;
    expect(late.status).toBe(200);
    expect(late.json).toEqual({ bound: false });
    expect(await victim.me(a)).toEqual({ user: null, keys: [] });
    expect((await victim.request(`${a}/users/sessions`)).status).toBe(401);
  });

  it('sign-out removes the session from the list; an abandoned session drops out by itself', async () => {
    const user = newUser();
    const stays = new BrowserClient('Stays/1');
    const leaves = new BrowserClient('Leaves/1');
    const abandons = new BrowserClient('Abandons/1');
    const staysId = await stays.login(a, user);
    await leaves.login(b, user);
    await abandons.login(a, user);
    expect((await leaves.request(`${b}/users/logout`, 'POST')).status).toBe(200);
    expect((await abandons.request(`${a}/abandon`, 'POST')).status).toBe(200); // plain session.abandon()
    expect((await list(stays, b)).map((s) => s.id)).toEqual([staysId]);
    expect(await leaves.me(a)).toEqual({ user: null, keys: [] });
  });

  it('signing in again (regenerate, then bind) keeps one entry that follows the new key: still revocable', async () => {
    const user = newUser();
    const keeper = new BrowserClient('Keeper/1');
    const again = new BrowserClient('Again/1');
    await keeper.login(a, user);
    const first = await again.login(a, user);
    const cookieBefore = again.jar.header();
    expect(await again.login(b, user)).toBe(first); // same session id, new key
    expect(again.jar.header()).not.toBe(cookieBefore);
    expect((await list(keeper, b)).map((s) => s.id)).toEqual(expect.arrayContaining([first]));
    expect((await list(keeper, b)).length).toBe(2);
    expect((await keeper.request(`${a}/users/revoke/${first}`, 'POST')).json).toEqual({ revoked: true });
    expect(await again.me(b)).toEqual({ user: null, keys: [] });
  });

  it("a sign-in sent twice, the second after the first moved the session: it answers 409 and leaves the first's cookie, signed in and listed once", async () => {
    const user = newUser();
    const browser = new BrowserClient('Twice/1');
    await browser.request(`${a}/users/cart`, 'POST');
    const before = browser.jar.header(); // what the second submit carries
    await browser.login(a, user);
    const second = await fetch(`${b}/users/login`, {
      method: 'POST',
      headers: { cookie: before, 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { code?: string }).code).toBe('SESSION_MOVED');
    // No Set-Cookie: the browser keeps the first sign-in's cookie (a deletion here would sign it out).
    expect(second.headers.getSetCookie()).toEqual([]);
    expect(await browser.me(b)).toEqual({ user, keys: expect.arrayContaining(['cart', 'user']) as unknown });
    expect((await list(browser, b)).length).toBe(1);
    // The old key still turns such requests away (its mark was not replaced by an abandon's).
    const third = await fetch(`${a}/users/cart`, { method: 'POST', headers: { cookie: before } });
    expect(third.status).toBe(409);
  });

  it("a sign-in sent twice, both loaded before either moved the session: the second answers 409 without a cookie, and the first's session is the only one listed", async () => {
    const user = newUser();
    const browser = new BrowserClient('TwiceLoaded/1');
    await browser.request(`${a}/users/cart`, 'POST');
    const before = browser.jar.header();
    const held = newGate();
    const second = fetch(`${b}/users/slow-login?gate=${held}`, {
      method: 'POST',
      headers: { cookie: before, 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    await gate(held).reached(1); // loaded the session, as the first one does now
    await browser.login(a, user);
    gate(held).release();
    const answered = await second;
    expect(answered.status).toBe(409);
    expect(((await answered.json()) as { code?: string }).code).toBe('SESSION_MOVED');
    expect(answered.headers.getSetCookie()).toEqual([]);
    expect(await browser.me(b)).toEqual({ user, keys: expect.arrayContaining(['cart', 'user']) as unknown });
    expect((await list(browser, b)).length).toBe(1); // no second device left behind
  });

  it('a sign-out still running in one tab while another tab signs in again leaves the new sign-in listed and revocable', async () => {
    const user = newUser();
    const keeper = new BrowserClient('Keeper/1');
    const browser = new BrowserClient('Tabs/1');
    await keeper.login(a, user);
    const id = await browser.login(a, user);
    // The second tab sends the cookie of the first sign-in: its sign-out loads that key, then waits.
    const tab = new BrowserClient('Tabs/1');
    const [name, value] = browser.jar.header().split('=');
    tab.jar.set(name, value);
    const held = newGate();
    const signingOut = tab.request(`${b}/users/slow-logout?gate=${held}`, 'POST');
    await gate(held).reached(1);
    expect(await browser.login(a, user)).toBe(id); // signed in again: a new key, the same id
    gate(held).release();
    // It signed out a key the session has left: 409 SESSION_MOVED, changing nothing (the browser may send it again).
    const late = await signingOut;
    expect(late.status).toBe(409);
    expect(late.json).toMatchObject({ code: 'SESSION_MOVED' });

    expect((await browser.me(b)).user).toBe(user);
    expect((await list(keeper, b)).map((s) => s.id)).toContain(id);
    expect((await keeper.request(`${a}/users/revoke/${id}`, 'POST')).json).toEqual({ revoked: true });
    expect((await browser.me(b)).user).toBeNull();
  });

  it('binds a new session whose id was read and committed alone before: signed in, listed with that id', async () => {
    const user = newUser();
    const browser = new BrowserClient('IdFirst/1');
    const res = await browser.request(`${a}/users/login-after-id`, 'POST', { user });
    expect(res.status).toBe(200);
    expect((await browser.me(b)).user).toBe(user);
    expect((await list(browser, b)).map((s) => s.id)).toEqual([res.json.id]);
  });

  it('binds a stored session that the request emptied and committed first: signed in, listed with its id', async () => {
    const user = newUser();
    const browser = new BrowserClient('EmptiedFirst/1');
    const { id } = (await browser.request(`${a}/users/cart`, 'POST')).json as { id: string };
    const res = await browser.request(`${b}/users/login-after-empty`, 'POST', { user });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ id, bound: true }); // the session it loaded, signed in: not abandoned, no new id
    expect(await browser.me(a)).toEqual({ user, keys: ['user'] });
    expect((await list(browser, a)).map((s) => s.id)).toEqual([id]);
  });

  it('refuses the list to a visitor who is not signed in (401)', async () => {
    const res = await new BrowserClient('Anon/1').request(`${a}/users/sessions`);
    expect(res.status).toBe(401);
  });

  it('maxSessionsPerUser: a late bind() of a session the limit already revoked signs nobody else out', async () => {
    const [x, y] = await deploy({ users: { maxSessionsPerUser: 1 } });
    const user = newUser();
    const evicted = new BrowserClient('Evicted/1');
    const newest = new BrowserClient('Newest/1');
    await evicted.login(x, user);
    const held = newGate();
    const late = evicted.request(`${y}/users/slow-write?gate=${held}&rebind=1`, 'POST');
    await gate(held).reached(1);
    await store.expire(5); // distinct sign-in times
    const newestId = await newest.login(x, user); // the limit revokes the other session
    gate(held).release();
    expect((await late).json).toEqual({ user, bound: false });
    expect((await newest.me(y)).user).toBe(user); // not revoked by the revoked session's late bind
    expect((await evicted.me(x)).user).toBeNull();
    expect((await list(newest, y)).map((s) => s.id)).toEqual([newestId]);
  });

  it('maxSessionsPerUser: binding one more revokes the oldest', async () => {
    const [x, y] = await deploy({ users: { maxSessionsPerUser: 2 } });
    const user = newUser();
    const browsers = ['First/1', 'Second/1', 'Third/1'].map((agent) => new BrowserClient(agent));
    const ids = [];
    for (const [i, browser] of browsers.entries()) {
      ids.push(await browser.login(i % 2 ? y : x, user));
      await store.expire(5); // distinct sign-in times
    }
    expect((await list(browsers[2], x)).map((s) => s.id)).toEqual([ids[1], ids[2]]);
    expect((await browsers[0].me(y)).user).toBeNull();
    expect((await browsers[1].me(x)).user).toBe(user);
  });

  it('maxSessionsPerUser: a session signed out by abandon() does not count, so a sign-in within the limit revokes nobody', async () => {
    const [x, y] = await deploy({ users: { maxSessionsPerUser: 2 } });
    const user = newUser();
    const [kept, left, next] = ['Kept/1', 'Left/1', 'Next/1'].map((agent) => new BrowserClient(agent));
    const keptId = await kept.login(x, user);
    await store.expire(5); // distinct sign-in times
    await left.login(y, user);
    await store.expire(5);
    expect((await left.request(`${x}/users/abandon`, 'POST')).status).toBe(200); // signed out: one session left
    const nextId = await next.login(y, user);
    // Two live sessions, within the limit: the first one stays signed in.
    expect((await kept.me(y)).user).toBe(user);
    expect((await list(next, x)).map((s) => s.id)).toEqual([keptId, nextId]);
  });

  it('maxSessionsPerUser under concurrent sign-ins on two instances: exactly the limit stays, every one of them signed in', async () => {
    const [x, y] = await deploy({ users: { maxSessionsPerUser: 3 } });
    const user = newUser();
    const browsers = Array.from({ length: 7 }, (_, i) => new BrowserClient(`Racer/${i}`));
    const signIns = await Promise.all(browsers.map((browser, i) => browser.signIn(i % 2 ? y : x, user)));
    const ids = signIns.map((s) => s.id);
    const signedIn: string[] = [];
    for (const [i, browser] of browsers.entries()) {
      const me = await browser.me(i % 2 ? x : y);
      if (me.user === user) signedIn.push(ids[i]);
      // A bind answers false when it was revoked (by itself, or by another sign-in before it listed the user's
      // sessions): nobody is signed in then.
      if (!signIns[i].bound) expect(me.user).toBeNull();
    }
    expect(signedIn).toHaveLength(3);
    const holder = browsers[ids.indexOf(signedIn[0])];
    expect((await list(holder, y)).map((s) => s.id).sort()).toEqual([...signedIn].sort());
  });

  it('expired sessions drop out of the index by themselves: only live entries are kept', async () => {
    const idleTimeout = store.realTime ? 1_500 : 60_000;
    const [x, y, options] = await deploy({ session: { idleTimeout } });
    const user = newUser();
    const active = new BrowserClient('Active/1');
    const idle = new BrowserClient('Idle/1');
    const activeId = await active.login(x, user);
    await idle.login(y, user);

    await store.expire(idleTimeout * 0.6);
    expect((await active.me(y)).user).toBe(user); // slides the active session only
    await store.expire(idleTimeout * 0.6);
    expect((await list(active, x)).map((s) => s.id)).toEqual([activeId]);

    await store.expire(idleTimeout * 1.2);
    expect((await active.me(x)).user).toBeNull();
    // The next sign-in finds both entries due and drops them: the index holds only the live session.
    const fresh = new BrowserClient('Fresh/1');
    const freshId = await fresh.login(y, user);
    expect((await list(fresh, x)).map((s) => s.id)).toEqual([freshId]);
    expect(await indexEntries(store, options, user)).toBe(1);
  });
});

/** The changes of a new session's first commit: `values` (text) under a key that holds no session. */
function newSessionChanges(values: Record<string, string>): SessionChanges {
  const set = new Map(Object.entries(values).map(([k, v]) => [k, new TextEncoder().encode(v)] as const));
  return { cleared: false, set, removed: new Set(), snapshot: () => new Map(set) };
}

/** One stored value as text (undefined when the session or the value is missing). */
function decoded(data: Map<string, Uint8Array> | undefined, field: string): string | undefined {
  const bytes = data?.get(field);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** How many entries the user's index holds, dead ones included (Redis: the sorted set's size). */
async function indexEntries(
  store: StoreUnderTest,
  options: SessionModuleOptions,
  user: string,
): Promise<number> {
  if (options.store) {
    const index = (options.store as MemorySessionStore).userSessionIndex() as MemoryUserSessionIndex;
    return index.entryCount(user);
  }
  if (options.postgres) {
    const table = (options.postgres as { tableName: string }).tableName;
    const [row] = await store.database!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "public"."${table}_users" WHERE user_id = $1`,
      [user],
    );
    return row.n;
  }
  const app = (options.redis as { applicationName: string }).applicationName;
  const [zset, hash] = userIndexKeys(app, user);
  const node = store.redis instanceof RedisClusterProcess ? store.redis : (store.redis as RedisServerProcess);
  const count = async (admin: { zcard(k: string): Promise<number>; hlen(k: string): Promise<number> }) => [
    await admin.zcard(zset),
    await admin.hlen(hash),
  ];
  if (node instanceof RedisClusterProcess) {
    const slot = await node.keySlot(zset);
    expect(await node.keySlot(hash)).toBe(slot); // one slot per user
    let found = [0, 0];
    for (const p of node.processes) {
      const [z, h] = await count(p.admin()).catch(() => [0, 0]); // MOVED on nodes that do not own the slot
      found = [found[0] + z, found[1] + h];
    }
    expect(found[1]).toBe(found[0]);
    return found[0];
  }
  const [z, h] = await count(node.admin());
  expect(h).toBe(z);
  return z;
}
