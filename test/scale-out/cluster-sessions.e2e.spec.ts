import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { gate, GatedSessionController, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisClusterProcess } from '../support/redis/index.js';
import {
  LoopbackClient,
  SECRETS,
  SessionClient,
  clusterMasters,
  dataKey,
  lockKey,
  ownsSlot,
  partition,
  processOf,
  waitUntil,
  type MasterView,
} from './support/load.js';

/**
 * Issue 8, part 1: sessions and session-backed TempData on a Redis Cluster of 3 masters + 3 replicas.
 * Sessions spread over every master, and every key of one session is in one slot on one node.
 */
const APP = 'cs';
const SESSIONS = 240;
const WORKERS = 16;

describe('sessions on a Redis Cluster (3 masters + 3 replicas)', () => {
  let cluster: RedisClusterProcess;
  let masters: MasterView[];
  const apps: INestApplication[] = [];
  const client = new LoopbackClient();

  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 1 });
    masters = await clusterMasters(cluster);
  }, 40_000);

  afterAll(async () => {
    releaseAllGates();
    client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cluster?.stop();
  });

  async function start(options: { lock?: boolean; gated?: boolean } = {}): Promise<string> {
    const { app, url } = await startSessionApp(
      {
        secrets: SECRETS,
        redis: { clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`), applicationName: APP },
        tempData: { provider: 'session' },
        ...(options.lock ? { session: { lock: true } } : {}),
      },
      options.gated ? { controllers: [GatedSessionController] } : {},
    );
    apps.push(app);
    return url;
  }

  /** Which masters hold `key` (EXISTS on each; a master that does not own the slot answers MOVED). */
  async function holders(key: string): Promise<number[]> {
    const found: number[] = [];
    for (const master of masters) {
      const exists = await processOf(cluster, master.port)
        .admin()
        .exists(key)
        .catch(() => 0);
      if (exists === 1) found.push(master.port);
    }
    return found;
  }

  it('spreads many sessions with session TempData over all three masters, each session in one slot on its owner', async () => {
    expect(masters).toHaveLength(3);
    const url = await start();
    const sessions = Array.from({ length: SESSIONS }, (_, i) => new SessionClient(`s${i}`, client));

    await Promise.all(
      partition(sessions, WORKERS).map(async (group) => {
        for (const s of group) {
          // TempData in the session: the POST creates the session (302), the next GET reads and deletes it.
          const posted = await s.send('POST', url, '/temp/Message', { json: { value: `hello ${s.name}` } });
          expect(posted.status).toBe(302);
          expect(s.key).toBeDefined();
          const counted = await s.send('GET', url, '/counter');
          expect(JSON.parse(counted.body)).toEqual({ count: 1 });
          const read = await s.send('GET', url, '/temp');
          expect(JSON.parse(read.body)).toEqual({ message: `hello ${s.name}` });
          const again = await s.send('GET', url, '/temp');
          expect(JSON.parse(again.body)).toEqual({ message: null });
          await s.send('POST', url, '/set/name', { json: { value: s.name } });
        }
      }),
    );

    // Keys per master: DBSIZE of each master is its share of the sessions (nothing else is stored).
    const sizes = await Promise.all(masters.map((m) => processOf(cluster, m.port).admin().dbsize()));
    console.log(`sessions per master (DBSIZE): ${sizes.join(', ')} of ${SESSIONS}`);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(SESSIONS);
    for (const size of sizes) expect(size).toBeGreaterThan(SESSIONS / 6); // about a third each

    // Each session: Data and Lock share one slot, and the hash sits on the master owning that slot.
    const replicaPorts = cluster.nodes.map((n) => n.port).filter((p) => !masters.some((m) => m.port === p));
    for (const s of sessions.slice(0, 60)) {
      const slot = await cluster.keySlot(dataKey(APP, s.key!));
      expect(await cluster.keySlot(lockKey(APP, s.key!))).toBe(slot);
      expect(await cluster.keySlot(`${APP}_${s.key!}`)).toBe(slot);
      const owner = masters.find((m) => ownsSlot(m, slot))!;
      expect(await holders(dataKey(APP, s.key!))).toEqual([owner.port]);
      const fields = await processOf(cluster, owner.port).admin().hkeys(dataKey(APP, s.key!));
      expect(fields).toEqual(expect.arrayContaining(['count', 'name']));
      expect(fields).not.toContain('__TempData'); // read, so deleted
    }
    // The replicas hold the same sessions (asynchronous replication: wait a little).
    const replicaTotal = async () => {
      const counts = await Promise.all(replicaPorts.map((p) => processOf(cluster, p).admin().dbsize()));
      return counts.reduce((a, b) => a + b, 0);
    };
    expect(await waitUntil(async () => (await replicaTotal()) === SESSIONS, 5_000)).toBe(true);

    // A value set in TempData and not read is stored in the session's own hash.
    const keeper = sessions[0];
    await keeper.send('POST', url, '/temp/Message', { json: { value: 'kept' } });
    const slot = await cluster.keySlot(dataKey(APP, keeper.key!));
    const owner = masters.find((m) => ownsSlot(m, slot))!;
    expect(await processOf(cluster, owner.port).admin().hkeys(dataKey(APP, keeper.key!))).toContain(
      '__TempData',
    );
  }, 40_000);

  it('with session.lock the lock key exists during a request, in the same slot on the same node as the data', async () => {
    const url = await start({ lock: true });
    // One session per master (bounded: a few dozen sessions always cover three masters).
    const byMaster = new Map<number, SessionClient>();
    for (let i = 0; i < 60 && byMaster.size < masters.length; i++) {
      const s = new SessionClient(`l${i}`, client);
      expect((await s.send('GET', url, '/counter')).status).toBe(200);
      const slot = await cluster.keySlot(dataKey(APP, s.key!));
      const port = masters.find((m) => ownsSlot(m, slot))!.port;
      if (!byMaster.has(port)) byMaster.set(port, s);
    }
    expect(byMaster.size).toBe(3);
    for (const [port, s] of byMaster) {
      const data = dataKey(APP, s.key!);
      const lock = lockKey(APP, s.key!);
      expect(await cluster.keySlot(lock)).toBe(await cluster.keySlot(data));
      const pending = s.send('GET', url, '/slow-counter'); // holds the session (and its lock) for 200 ms
      let seenOn: number[] = [];
      await waitUntil(
        async () => {
          seenOn = await holders(lock);
          return seenOn.length > 0;
        },
        2_000,
        10,
      );
      expect(seenOn).toEqual([port]);
      expect(await holders(data)).toEqual([port]);
      expect(JSON.parse((await pending).body)).toEqual({ count: 2 });
      expect(await holders(lock)).toEqual([]); // released at the end of the request
    }
  }, 30_000);

  it("with session.lock, regenerate() and abandon() read the lock key in the session's slot: applied under a held lock, refused (409) under one that expired", async () => {
    const url = await start({ lock: true, gated: true });
    const COOKIE = '.Nest.Session';
    let gates = 0;
    const gated = async (action: string, cookie: string, open: boolean) => {
      const name = `cluster-lock-${++gates}`;
      if (open) gate(name).release();
      const pending = request(url)
        .post(`/gated/${name}/${action}`)
        .set('Cookie', cookie)
        .send({})
        .then((res) => res);
      if (!open) await gate(name).reached(1);
      return { name, pending };
    };
    /** Session hashes on all masters (locks and ended marks left out). */
    const sessions = async () => {
      const found = await Promise.all(
        masters.map((m) => processOf(cluster, m.port).admin().keys(`{${APP}_*}_Data`)),
      );
      return found.flat().length;
    };
    const sessionKeyOf = (cookie: string) => {
      const signed = cookie.slice(cookie.indexOf('=') + 1);
      return signed.slice(0, signed.lastIndexOf('.'));
    };

    // Under a held lock: moved, then ended.
    const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
    const moved = await (await gated('regenerate', cookie, true)).pending;
    expect(moved.status).toBe(200);
    const next = cookiePair(moved, COOKIE);
    await request(url).get('/counter').set('Cookie', next).expect(200, { count: 2 });
    expect((await (await gated('abandon', next, true)).pending).status).toBe(200);
    await request(url).get('/counter').set('Cookie', next).expect(200, { count: 1 });

    // The lock expires under a stalled request; another takes it and writes; the stalled one is refused.
    for (const action of ['regenerate', 'abandon']) {
      const stale = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const stalled = await gated(action, stale, false);
      expect(await cluster.client().del(lockKey(APP, sessionKeyOf(stale)))).toBe(1);
      await request(url).get('/counter').set('Cookie', stale).expect(200, { count: 2 });
      const before = await sessions();
      gate(stalled.name).release();
      const late = await stalled.pending;
      expect(late.status).toBe(409);
      expect(late.body).toMatchObject({ code: 'SESSION_LOCK_LOST' });
      expect(late.headers['set-cookie']).toBeUndefined();
      expect(await sessions()).toBe(before);
      await request(url).get('/counter').set('Cookie', stale).expect(200, { count: 3 });
    }
  }, 30_000);
});
