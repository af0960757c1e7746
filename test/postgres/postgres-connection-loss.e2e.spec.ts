import request from 'supertest';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { HandshakeFaultProxy, TestDatabase } from '../support/postgres/index.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Qm4wX8cV2bN6zL1kJ7hG3fD9sA5pO0iU8yT2rE6wQ1'];
const TRIALS = 3;

/** The protocol messages in `bytes`: their type letters, and the fields of each ErrorResponse by code. */
function messages(bytes: Buffer): { type: string; fields: Record<string, string> }[] {
  const found: { type: string; fields: Record<string, string> }[] = [];
  for (let at = 0; at + 5 <= bytes.length;) {
    const type = String.fromCharCode(bytes[at]);
    const end = at + 1 + bytes.readInt32BE(at + 1);
    const fields: Record<string, string> = {};
    if (type === 'E') {
      for (let f = at + 5; f < end && bytes[f] !== 0;) {
        const zero = bytes.indexOf(0, f + 1);
        fields[String.fromCharCode(bytes[f])] = bytes.toString('utf8', f + 1, zero);
        f = zero + 1;
      }
    }
    found.push({ type, fields });
    at = end;
  }
  return found;
}

/**
 * A backend terminated (pg_terminate_backend, a restart) right as a new pool connection finishes its
 * handshake: node-postgres reads the ReadyForQuery and the FATAL together, completes the connect, and emits
 * the connection's 'error' in the same turn, after pg-pool removed its own listener to hand the connection
 * over and before the caller's promise continuation runs. With no listener there, the 'error' stopped the
 * process; the store's listener comes from the pool's 'connect' event now. Without it, each trial here is an
 * uncaught "terminating connection due to administrator command" (pg's Client._handleErrorEvent), which fails
 * the test; a random pg_terminate_backend loop hit that window about once in two runs.
 */
describe('PostgreSQL connection terminated as the pool hands it out', () => {
  let db: TestDatabase;
  let proxy: HandshakeFaultProxy;

  beforeAll(async () => {
    db = await TestDatabase.create();
    proxy = await HandshakeFaultProxy.start({ host: db.host, port: db.port }, async (pid) => {
      const [row] = await db.query<{ terminated: boolean }>('SELECT pg_terminate_backend($1) AS terminated', [
        pid,
      ]);
      if (!row.terminated) throw new Error(`backend ${pid} was not terminated`);
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await db?.drop();
  });

  it(`the process keeps running: the request on that connection answers 503, the next one 200 (${TRIALS} trials)`, async () => {
    // Started in the test, so an uncaught error from its connections fails this test (Jest's handler), not the file.
    const { app, url } = await startSessionApp({
      secrets: SECRETS,
      postgres: { connectionString: db.url(proxy) },
    });
    try {
      await faults(url);
    } finally {
      await app.close();
    }
  });

  async function faults(url: string): Promise<void> {
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    for (let i = 0; i < TRIALS; i++) {
      // The pool's idle connections go, so the next request opens a new one: the one the fault catches.
      await proxy.endAll();
      expect(proxy.connections).toBe(0);
      const fault = proxy.failNextHandshake();
      const failed = await request(url).get('/counter').set('Cookie', cookie).timeout(5000);
      const { pid, delivered } = await fault;
      // One read brought the handshake's ReadyForQuery and the terminated backend's FATAL.
      const [ready, fatal, ...rest] = messages(delivered);
      expect(ready.type).toBe('Z');
      expect(fatal).toMatchObject({ type: 'E', fields: { S: 'FATAL', C: '57P01' } });
      expect(rest).toEqual([]);
      expect(pid).toBeGreaterThan(0);
      expect(failed.status).toBe(503);
      expect(failed.body).toMatchObject({ code: 'SESSION_UNAVAILABLE' });
      // The dead connection was dropped: the next request opens a working one, and the session is intact.
      await request(url)
        .get('/counter')
        .set('Cookie', cookie)
        .timeout(5000)
        .expect(200, { count: i + 2 });
    }
  }
});
