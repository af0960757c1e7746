import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { gate, GatedSessionController } from '../support/apps/gated-session.controller.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisClusterProcess, type RedisServerProcess } from '../support/redis/index.js';
import { clusterMasters, dataKey, ownsSlot, processOf, SECRETS } from './support/load.js';

const COOKIE = '.Nest.Session';
const APP = 'ccs';
const TIMEOUT = 400;

function sessionKeyOf(cookie: string): string {
  const signed = cookie.slice(cookie.indexOf('=') + 1);
  return signed.slice(0, signed.lastIndexOf('.'));
}

/**
 * The commit script's semantics on a Redis Cluster (3 masters), two app instances: field deletes
 * for the last key, limits on what is stored, and the deadline that keeps a 503 commit from
 * landing later. Each session's keys live in one slot, so the script runs on its owner, atomically.
 */
describe('commit semantics on a Redis Cluster (two instances)', () => {
  let cluster: RedisClusterProcess;
  const apps: INestApplication[] = [];
  let a: string;
  let b: string;

  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 0 });
    const start = async (timeout?: number) => {
      const started = await startSessionApp(
        {
          secrets: SECRETS,
          redis: {
            clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`),
            applicationName: APP,
            operationTimeoutInMilliseconds: timeout,
          },
          session: { maxSessionBytes: 100_000 },
        },
        { controllers: [GatedSessionController] },
      );
      apps.push(started.app);
      return started.url;
    };
    a = await start(TIMEOUT);
    b = await start();
  }, 40_000);
  afterAll(async () => {
    for (const app of apps) await app.close();
    await cluster?.stop();
  });

  /** The master that owns the session of `cookie`. */
  async function owner(cookie: string): Promise<RedisServerProcess> {
    const slot = await cluster.keySlot(dataKey(APP, sessionKeyOf(cookie)));
    const master = (await clusterMasters(cluster)).find((m) => ownsSlot(m, slot))!;
    return processOf(cluster, master.port);
  }

  it("removing the session's last key keeps a concurrent request's new key (3 trials)", async () => {
    for (let i = 0; i < 3; i++) {
      const cookie = cookiePair(await request(a).post('/set/a').send({ value: 'only' }).expect(200), COOKIE);
      const g = gate(`cluster-last-${i}`);
      const removed = request(a)
        .post(`/gated/cluster-last-${i}/remove/a`)
        .set('Cookie', cookie)
        .then((r) => r);
      await g.reached(1);
      await request(b)
        .post('/set/b')
        .set('Cookie', cookie)
        .send({ value: `b${i}` })
        .expect(200);
      g.release();
      expect((await removed).status).toBe(200);
      const { body } = await request(b).get('/keys').set('Cookie', cookie).expect(200);
      expect(body).toEqual({ b: `b${i}` });
    }
  });

  it('10 concurrent 60 KB writes under maxSessionBytes 100000: one stored, nine answer 413', async () => {
    const cookie = cookiePair(await request(a).post('/set/seed').send({ value: 's' }).expect(200), COOKIE);
    const g = gate('cluster-bytes');
    const writes = Array.from({ length: 10 }, (_, i) =>
      request(i % 2 ? b : a)
        .post(`/gated/cluster-bytes/fill/v${i}/60000`)
        .set('Cookie', cookie)
        .then((r) => r),
    );
    await g.reached(10);
    g.release();
    const statuses = (await Promise.all(writes)).map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array<number>(9).fill(413)]);
    const { body } = await request(a).get('/gated/cluster-bytes/size').set('Cookie', cookie).expect(200);
    expect(body.bytes).toBeLessThanOrEqual(100_000);
  });

  it('a commit answered 503 while its owner node was paused is not applied once the node resumes', async () => {
    const cookie = cookiePair(await request(b).post('/set/x').send({ value: 'initial' }).expect(200), COOKIE);
    const node = await owner(cookie);
    const g = gate('cluster-pause');
    const late = request(a)
      .post('/gated/cluster-pause/set/x')
      .set('Cookie', cookie)
      .send({ value: 'paused' })
      .then((r) => r);
    await Promise.race([
      g.reached(1),
      late.then((res) => {
        throw new Error(`the request answered ${res.status} before reaching the gate`);
      }),
    ]);
    await node.admin().call('CLIENT', 'PAUSE', String(10_000), 'WRITE');
    try {
      g.release();
      expect((await late).status).toBe(503);
    } finally {
      await node.admin().call('CLIENT', 'UNPAUSE');
    }
    await node.admin().set(`{${APP}_${sessionKeyOf(cookie)}}_probe`, '1'); // runs after the unpaused commit
    expect(await node.admin().hget(dataKey(APP, sessionKeyOf(cookie)), 'x')).toBe('initial');
  });

  it('a request in flight across regenerate() answers 409 and applies nothing: the mark lives in the session slot', async () => {
    const cookie = cookiePair(await request(a).post('/set/seed').send({ value: 'old' }).expect(200), COOKIE);
    const g = gate('cluster-moved');
    const late = request(b)
      .post('/gated/cluster-moved/set/late')
      .set('Cookie', cookie)
      .send({ value: 'late' })
      .then((r) => r);
    await g.reached(1);
    gate('cluster-mover').release();
    const moved = await request(a)
      .post('/gated/cluster-mover/regenerate')
      .set('Cookie', cookie)
      .send({})
      .expect(200);
    g.release();
    const answered = await late;
    expect(answered.status).toBe(409);
    expect(answered.body).toMatchObject({ code: 'SESSION_MOVED' });
    const node = await owner(cookie);
    expect(await node.admin().exists(dataKey(APP, sessionKeyOf(cookie)))).toBe(0);
    expect(await node.admin().get(`{${APP}_${sessionKeyOf(cookie)}}_Ended`)).toBe('m');
    const { body } = await request(b).get('/keys').set('Cookie', cookiePair(moved, COOKIE)).expect(200);
    expect(body).toEqual({ seed: 'old' });
  });

  it('a request that finds the session just moved answers 409 and writes nothing: the mark is read on the session slot', async () => {
    const cookie = cookiePair(await request(a).post('/set/seed').send({ value: 'old' }).expect(200), COOKIE);
    await request(a).post('/regenerate').set('Cookie', cookie).expect(200);
    const late = await request(b).post('/set/late').set('Cookie', cookie).send({ value: 'late' });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'SESSION_MOVED' });
    expect(await (await owner(cookie)).admin().exists(dataKey(APP, sessionKeyOf(cookie)))).toBe(0);
  });
});
