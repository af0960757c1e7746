/**
 * A gateway reads the session of the handshake cookie, on both WebSocket adapters (ws, socket.io), on
 * the memory store, a real Redis and PostgreSQL, on the platform of NSS_TEST_PLATFORM: a snapshot at connect that
 * follows HTTP changes only on reload, and sees a logout, a revocation or an idle expiry as no session.
 */
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ManualClock, MemorySessionStore, type SessionModuleOptions } from 'nest-session-state';
import { cookiePair } from '../support/cookie-jar.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { connectClient, type GatewayClient } from './support/gateway-client.js';
import { startGatewayApp, type GatewayAdapter, type SnapshotReply } from './support/gateway-test.app.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['g4tewayS3ss10ns-k8JdQ0wZr4Vn1pYt6sXc2bLm9gHf3aEu7iOq5yTz0R'];
// Real time on Redis: a reload at 0.6x must land with room to spare on a busy CI machine.
const IDLE_MS = 2_500;

interface StoreKind {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  options(): SessionModuleOptions;
  /** Lets `ms` pass for the store (the memory and PostgreSQL stores' clock; real time on Redis). */
  pass(ms: number): Promise<void>;
}

function memory(): StoreKind {
  const clock = new ManualClock(Date.now());
  return {
    name: 'memory',
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    options: () => ({
      secrets: SECRETS,
      session: { idleTimeout: IDLE_MS },
      store: new MemorySessionStore({ clock }),
    }),
    pass: (ms) => Promise.resolve(clock.advance(ms)),
  };
}

let redisApps = 0;
function redis(): StoreKind {
  let server: RedisServerProcess | undefined;
  return {
    name: 'redis',
    start: async () => void (server = await RedisServerProcess.start()),
    stop: async () => server?.stop(),
    options: () => ({
      secrets: SECRETS,
      session: { idleTimeout: IDLE_MS },
      redis: { host: server!.host, port: server!.port, applicationName: `ws${++redisApps}` },
    }),
    pass: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

function postgres(): StoreKind {
  let db: TestDatabase | undefined;
  // Expiry reads the app's clock on PostgreSQL (the postgres.clock option), so time passes at once here too.
  const clock = new ManualClock(Date.now());
  return {
    name: 'postgres',
    start: async () => void (db = await TestDatabase.create()),
    stop: async () => db?.drop(),
    options: () => ({
      secrets: SECRETS,
      session: { idleTimeout: IDLE_MS },
      postgres: { connectionString: db!.url(), clock },
    }),
    pass: (ms) => Promise.resolve(clock.advance(ms)),
  };
}

const adapters: GatewayAdapter[] = ['ws', 'socket.io'];

describe.each([memory(), redis(), postgres()])('gateway sessions on $name', (store) => {
  beforeAll(() => store.start());
  afterAll(() => store.stop());

  describe.each(adapters)('with the %s adapter', (adapter) => {
    let app: INestApplication;
    let url: string;
    let port: number;
    const clients: GatewayClient[] = [];

    beforeAll(async () => {
      ({ app, url, port } = await startGatewayApp(adapter, store.options()));
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    });
    afterAll(() => app.close());

    const connect = async (cookie: string | undefined, lazy = false) => {
      const client = await connectClient(adapter, port, cookie, { lazy });
      clients.push(client);
      return client;
    };
    const login = async (user: string) =>
      cookiePair(await request(url).post('/login').send({ user }).expect(200), COOKIE);

    it('no cookie: an empty, available session (no user)', async () => {
      const client = await connect(undefined);
      expect(await client.request('snapshot')).toEqual({ user: null, count: null, available: true });
    });

    it('the handshake cookie of a signed-in visitor: the user, through GatewaySessions and @Session()', async () => {
      const cookie = await login('ada');
      const client = await connect(cookie);
      expect(await client.request('snapshot')).toEqual({ user: 'ada', count: null, available: true });
      expect(await client.request('param')).toEqual({ user: 'ada', count: null, available: true });
    });

    it('a snapshot: an HTTP change after connect is seen on reload, not before', async () => {
      const cookie = await login('grace');
      await request(url).post('/count').set('Cookie', cookie).expect(200, { count: 1 });
      const client = await connect(cookie);
      expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ count: 1 });
      await request(url).post('/count').set('Cookie', cookie).expect(200, { count: 2 });
      expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ count: 1 });
      expect(await client.request<SnapshotReply>('param')).toMatchObject({ count: 1 });
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: 'grace', count: 2 });
      expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ count: 2 });
      expect(await client.request<SnapshotReply>('param')).toMatchObject({ count: 2 });
    });

    it('abandoned by an HTTP logout: no user on reload', async () => {
      const cookie = await login('alan');
      const client = await connect(cookie);
      expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ user: 'alan' });
      await request(url).post('/logout').set('Cookie', cookie).expect(200);
      expect(await client.request<SnapshotReply>('reload')).toEqual({
        user: null,
        count: null,
        available: true,
      });
      const again = await connect(cookie);
      expect(await again.request<SnapshotReply>('snapshot')).toMatchObject({ user: null });
    });

    it('revoked through UserSessions (from another session): no user on reload', async () => {
      const cookie = await login('barbara');
      const client = await connect(cookie);
      expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ user: 'barbara' });
      await request(url).post('/revoke-all').send({ user: 'barbara' }).expect(200, { revoked: 1 });
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: null });
    });

    it('revoked from the gateway with its own snapshot as current: revoked, no error; no user on reload or over HTTP', async () => {
      const cookie = await login('katherine');
      const client = await connect(cookie);
      expect(await client.request<SnapshotReply>('revoke-self')).toEqual({
        user: 'katherine',
        count: null,
        available: true,
        revoked: true,
      });
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: null });
      await request(url).post('/count').set('Cookie', cookie).expect(200, { count: 1 });
    });

    it('idle-expired: no user on reload', async () => {
      const cookie = await login('edsger');
      const client = await connect(cookie);
      expect(await client.request<SnapshotReply>('snapshot')).toMatchObject({ user: 'edsger' });
      await store.pass(IDLE_MS + 300);
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: null });
    });

    it('a reload slides the idle timeout, as an HTTP read does', async () => {
      const cookie = await login('donald');
      const client = await connect(cookie);
      await store.pass(IDLE_MS * 0.6);
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: 'donald' });
      await store.pass(IDLE_MS * 0.6);
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: 'donald' });
    });

    it.each([
      ['tampered', (cookie: string) => cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA')],
      ['malformed', () => `${COOKIE}=not-a-signed-value`],
      ['from another key ring', () => `${COOKIE}=c2Vzc2lvbmtleQ.c2lnbmF0dXJlYnl0aGVvdGhlcmtleXJpbmc`],
      // The session's real key with its signature cut off: a key alone is never taken for a signed one.
      [
        'signature-stripped (the session’s own key, unsigned)',
        (cookie: string) => cookie.slice(0, cookie.lastIndexOf('.')),
      ],
    ])('a %s cookie: no session, and the gateway keeps working', async (_label, mangle) => {
      const cookie = await login('mallory');
      const client = await connect(mangle(cookie));
      expect(await client.request('snapshot')).toEqual({ user: null, count: null, available: true });
      expect(await client.request('reload')).toEqual({ user: null, count: null, available: true });
    });

    it('writes are refused with SessionReadOnlyError, never dropped silently; the stored session is unchanged', async () => {
      const cookie = await login('linus');
      await request(url).post('/count').set('Cookie', cookie).expect(200, { count: 1 });
      const client = await connect(cookie);
      const { errors, after } = await client.request<{
        errors: Record<string, string>;
        after: SnapshotReply;
      }>('write');
      expect(errors).toEqual({
        setString: 'SessionReadOnlyError',
        set: 'SessionReadOnlyError',
        setInt32: 'SessionReadOnlyError',
        remove: 'SessionReadOnlyError',
        clear: 'SessionReadOnlyError',
        regenerate: 'SessionReadOnlyError',
        abandon: 'SessionReadOnlyError',
        commit: 'SessionReadOnlyError',
      });
      expect(after).toEqual({ user: 'linus', count: 1, available: true });
      expect(await client.request<SnapshotReply>('reload')).toMatchObject({ user: 'linus', count: 1 });
      await request(url).post('/count').set('Cookie', cookie).expect(200, { count: 2 });
    });

    it('@TempData() in a gateway: refused (an error reply), the connection stays usable', async () => {
      const client = await connect(undefined);
      const exception = client.nextException();
      void client.request('temp-data').catch(() => undefined);
      expect(await exception).toMatchObject({ status: 'error' });
      expect(await client.request('snapshot')).toMatchObject({ user: null });
    });

    it(
      adapter === 'ws'
        ? 'a ws client never connect()ed: of() throws GatewaySessionNotConnectedError (the handshake was only in handleConnection)'
        : 'a socket.io client never connect()ed: of() loads its snapshot from client.request',
      async () => {
        const cookie = await login('ken');
        const client = await connect(cookie, true);
        const reply = await client.request<SnapshotReply>('snapshot');
        if (adapter === 'ws') {
          expect(reply.error).toBe('GatewaySessionNotConnectedError');
          expect(reply.message).toContain('gatewaySessions.connect(client, request)');
        } else {
          expect(reply).toEqual({ user: 'ken', count: null, available: true });
        }
      },
    );
  });
});
