import type { INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { gate, GatedSessionController, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { RedisClusterProcess } from '../support/redis/index.js';
import {
  LoopbackClient,
  Outcomes,
  SECRETS,
  SessionClient,
  clusterMasters,
  dataKey,
  ownsSlot,
  partition,
  percentile,
  processOf,
  redisCliCluster,
  slotCount,
  errorStats,
  waitForSlotAgreement,
  type MasterView,
  waitForReplicaAcks,
} from './support/load.js';

/**
 * Issue 8, part 2: slots move between masters (`redis-cli --cluster reshard`) while requests run. No
 * request may fail and no session may lose data: ioredis follows MOVED (slot moved) and ASK (slot being
 * moved, the key already on the target) redirections.
 */
const APP = 'rs';
const SESSIONS = 300;
const WORKERS = 24;
/** Slots moved per reshard step; three steps move slots around the ring A -> B -> C -> A. */
const SLOTS_PER_STEP = 700;
const LOAD_LIMIT_MS = 40_000;

describe('resharding a Redis Cluster under load', () => {
  let cluster: RedisClusterProcess;
  const apps: INestApplication[] = [];
  /** urls[0]: an instance with default durability; urls[1]: one with `waitForReplicas: 1`. */
  const urls: string[] = [];
  /** An instance with `session.lock` on the same cluster. */
  let lockingUrl: string;
  const logger = new CaptureLogger();
  const client = new LoopbackClient(WORKERS);

  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 1 });
    await waitForReplicaAcks(cluster); // the waitForReplicas instance's first commits need it
    // Two instances on one cluster: one plain, one waiting for a replica on every commit (the WAIT
    // travels in a pipeline with the commit script, which needs its own redirection handling).
    const clusterNodes = cluster.nodes.map((n) => `${n.host}:${n.port}`);
    for (const waitForReplicas of [0, 1]) {
      const started = await startSessionApp(
        {
          secrets: SECRETS,
          // Generous, so that only a redirection failure (immediate) can fail a request, not a busy machine.
          redis: {
            clusterNodes,
            applicationName: APP,
            waitForReplicas,
            operationTimeoutInMilliseconds: 3_000,
          },
        },
        { logger },
      );
      apps.push(started.app);
      urls.push(started.url);
    }
    const locking = await startSessionApp(
      { secrets: SECRETS, redis: { clusterNodes, applicationName: APP }, session: { lock: true } },
      { logger, controllers: [GatedSessionController] },
    );
    apps.push(locking.app);
    lockingUrl = locking.url;
  }, 40_000);

  afterAll(async () => {
    releaseAllGates();
    client.close();
    await Promise.all(apps.map((a) => a.close()));
    await cluster?.stop();
  });

  it('moves slots while /counter and /set run over many sessions: no 5xx, every increment and value kept', async () => {
    const urlOf = (s: SessionClient) => urls[Number(s.name.slice(1)) % 2];
    const sessions = Array.from({ length: SESSIONS }, (_, i) => new SessionClient(`s${i}`, client));
    const outcomes = new Outcomes();
    const latencies: number[] = [];
    /** When each answer arrived: the load must have been answered while each step moved slots. */
    const answeredAt: number[] = [];
    const anomalies: string[] = [];

    // One request of a session at a time (a session's counter is a read-modify-write).
    async function step(s: SessionClient, i: number): Promise<void> {
      const url = urlOf(s);
      if (i % 3 === 2) {
        const key = `k${i % 5}`;
        const value = `${s.name}-${i}`;
        const res = await s.send('POST', url, `/set/${key}`, { json: { value } });
        outcomes.add(res, 'POST /set');
        latencies.push(res.ms);
        answeredAt.push(Date.now());
        if (res.status === 200) s.values.set(key, value);
        return;
      }
      const res = await s.send('GET', url, '/counter');
      outcomes.add(res, 'GET /counter');
      latencies.push(res.ms);
      answeredAt.push(Date.now());
      if (res.status !== 200) return;
      const { count } = JSON.parse(res.body) as { count: number };
      // Each answer must continue from the last acknowledged one: anything else is a lost update (or an
      // increment applied although its request failed).
      if (count !== s.acknowledged + 1)
        anomalies.push(
          `${s.name} (${s.key}) on ${urlOf(s)}: ${s.acknowledged} then ${count}: ${s.history.join(' | ')}`,
        );
      s.acknowledged = count;
    }

    // Sessions exist (and are spread over the masters) before slots move.
    await Promise.all(
      partition(sessions, WORKERS).map(async (group) => {
        for (const s of group) await step(s, 0);
      }),
    );
    const before = await clusterMasters(cluster);
    const keysBefore = await keysPerMaster(before);

    const errorsBefore = await errorStats(cluster);
    let resharding = true;
    const loadStarted = Date.now();
    const load = Promise.all(
      partition(sessions, WORKERS).map(async (group) => {
        for (let i = 1; resharding && Date.now() - loadStarted < LOAD_LIMIT_MS; i++) {
          for (const s of group) await step(s, i);
        }
      }),
    );

    const moves: string[] = [];
    const movedPerStep: number[] = [];
    const stepWindows: [number, number][] = [];
    let stepStart = before;
    const reshardStarted = Date.now();
    try {
      for (let k = 0; k < 3; k++) {
        const from = before[k];
        const to = before[(k + 1) % 3];
        await waitForSlotAgreement(cluster);
        const t0 = Date.now();
        await redisCliCluster(
          [
            'reshard',
            `127.0.0.1:${from.port}`,
            '--cluster-from',
            from.id,
            '--cluster-to',
            to.id,
            '--cluster-slots',
            String(SLOTS_PER_STEP),
            '--cluster-yes',
          ],
          30_000,
        );
        stepWindows.push([t0, Date.now()]);
        moves.push(`${SLOTS_PER_STEP} slots ${from.port} -> ${to.port} in ${Date.now() - t0} ms`);
        await waitForSlotAgreement(cluster);
        const view = await clusterMasters(cluster);
        movedPerStep.push(
          slotCount(view.find((m) => m.id === to.id)!) - slotCount(stepStart.find((m) => m.id === to.id)!),
        );
        stepStart = view;
      }
    } finally {
      resharding = false;
      await load;
    }
    const reshardMs = Date.now() - reshardStarted;
    const errorsAfter = await errorStats(cluster);
    const redirects = {
      MOVED: (errorsAfter.MOVED ?? 0) - (errorsBefore.MOVED ?? 0),
      ASK: (errorsAfter.ASK ?? 0) - (errorsBefore.ASK ?? 0),
    };
    const after = await clusterMasters(cluster);
    const keysAfter = await keysPerMaster(after);

    console.log(
      [
        `resharding: ${moves.join('; ')} (total ${reshardMs} ms)`,
        `slots per master before ${before.map(slotCount).join('/')}, after ${after.map(slotCount).join('/')}`,
        `redirections answered by the cluster meanwhile: MOVED ${redirects.MOVED}, ASK ${redirects.ASK}`,
        `keys per master before ${keysBefore.join('/')}, after ${keysAfter.join('/')}`,
        `requests: ${outcomes.total} (${outcomes.summary()}), p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
          `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
        ...outcomes.samples,
        ...anomalies,
        ...logger.lines
          .filter((l) => l.level === 'warn' || l.level === 'error')
          .map((l) => `log ${l.level}: ${l.message}`),
      ].join('\n'),
    );

    // The slots did move (and keys with them).
    // (Each step moved its slots; the ring may bring some back where they started, so compare per step.)
    expect(movedPerStep).toEqual([SLOTS_PER_STEP, SLOTS_PER_STEP, SLOTS_PER_STEP]);
    expect(after.map(slotCount)).toEqual(before.map(slotCount));
    // The load ran throughout: requests were answered while each step moved its slots. (Not a request count:
    // a busy CI machine answers fewer rounds in the same resharding time.)
    const answeredPerStep = stepWindows.map(
      ([from, to]) => answeredAt.filter((t) => t >= from && t <= to).length,
    );
    expect(answeredPerStep.every((n) => n > 0)).toBe(true);
    expect(outcomes.total).toBeGreaterThan(SESSIONS * 2);
    expect(redirects.MOVED + redirects.ASK).toBeGreaterThan(0); // the client was redirected...
    // ...and no request failed.
    expect(outcomes.samples).toEqual([]);
    expect(anomalies).toEqual([]);
    expect(outcomes.count((s) => s !== 200)).toBe(0);

    // Every session kept every acknowledged increment and value, read back through the app...
    await Promise.all(
      partition(sessions, WORKERS).map(async (group) => {
        for (const s of group) {
          const url = urlOf(s);
          const res = await s.send('GET', url, '/keys');
          expect(res.status).toBe(200);
          const stored = JSON.parse(res.body) as Record<string, string>;
          for (const [key, value] of s.values) expect(stored[key]).toBe(value);
          const read = await s.send('GET', url, '/read');
          expect(JSON.parse(read.body).count).toBe(s.acknowledged);
        }
      }),
    );
    // ...and each hash is on the master that now owns its slot.
    for (const s of sessions.slice(0, 30)) {
      const slot = await cluster.keySlot(dataKey(APP, s.key!));
      const owner = after.find((m) => ownsSlot(m, slot))!;
      const admin = cluster.processes.find((p) => p.port === owner.port)!.admin();
      expect(await admin.exists(dataKey(APP, s.key!))).toBe(1);
    }

    async function keysPerMaster(view: MasterView[]): Promise<number[]> {
      return Promise.all(
        view.map((m) =>
          cluster.processes
            .find((p) => p.port === m.port)!
            .admin()
            .dbsize(),
        ),
      );
    }
  }, 60_000);
  /** Starts migrating `key`'s slot from its owner to another master (SETSLOT IMPORTING, then MIGRATING). */
  async function startMigrating(view: MasterView[], key: string) {
    const slot = await cluster.keySlot(key);
    const from = view.find((m) => ownsSlot(m, slot))!;
    const to = view.find((m) => m !== from)!;
    const source = processOf(cluster, from.port).admin();
    const target = processOf(cluster, to.port).admin();
    await target.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', from.id);
    await source.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', to.id);
    return { slot, to, source, target };
  }

  /** Ends a migration as redis-cli would: the slot's keys left on the source move, and the slot goes to the target. */
  async function finishMigrating(view: MasterView[], slot: number, to: MasterView, source: Redis) {
    const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')) as string[];
    if (keys.length > 0)
      await source.call('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
    for (const master of view)
      await processOf(cluster, master.port).admin().call('CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id);
    await waitForSlotAgreement(cluster);
  }

  it('a slot stopped half-way through its migration (ASK): sessions of both instances keep working', async () => {
    const view = await clusterMasters(cluster);
    const errorsBefore = await errorStats(cluster);
    for (const [index, url] of urls.entries()) {
      const s = new SessionClient(`ask${index}`, client);
      expect(JSON.parse((await s.send('GET', url, '/counter')).body)).toEqual({ count: 1 });
      const key = dataKey(APP, s.key!);
      // What `redis-cli --cluster reshard` does for one slot, stopped after moving this session's hash:
      // the source now answers ASK for it, the target serves it only after ASKING.
      const { slot, to, source, target } = await startMigrating(view, key);
      // Every key of the slot moves (another test's session may share it), as redis-cli does; otherwise
      // the source would refuse to give the slot away below while it still holds one.
      const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')) as string[];
      expect(keys).toContain(key);
      await source.call('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
      await expect(source.exists(key)).rejects.toThrow(/^ASK /);

      for (let count = 2; count <= 4; count++)
        expect(JSON.parse((await s.send('GET', url, '/counter')).body)).toEqual({ count });
      expect(JSON.parse((await s.send('GET', url, '/read')).body).count).toBe(4);
      const [, [, onTarget]] = (await target.pipeline().asking().hexists(key, 'count').exec())!;
      expect(onTarget).toBe(1);

      // The migration completes: the slot belongs to the target (MOVED from now on).
      for (const master of view)
        await processOf(cluster, master.port).admin().call('CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id);
      await waitForSlotAgreement(cluster);
      expect(JSON.parse((await s.send('GET', url, '/counter')).body)).toEqual({ count: 5 });
    }
    const errorsAfter = await errorStats(cluster);
    const asks = (errorsAfter.ASK ?? 0) - (errorsBefore.ASK ?? 0);
    console.log(`half-migrated slots: ${asks} ASK redirections followed, every request answered 200`);
    expect(asks).toBeGreaterThanOrEqual(2 * 3 * 2); // load + commit of 3 requests, on both instances
  }, 30_000);

  // A lock taken while its slot migrates is a new key, which only the target takes (ASK); the data is still on
  // the source until its key moves, and the commit script there cannot read the lock ("non local key").
  it('with session.lock, a commit while the slot migrates and the data has not moved yet answers 503 and applies nothing; once it moved, 200', async () => {
    const view = await clusterMasters(cluster);
    const s = new SessionClient('lock0', client);
    expect(JSON.parse((await s.send('GET', lockingUrl, '/counter')).body)).toEqual({ count: 1 });
    const key = dataKey(APP, s.key!);
    const { slot, to, source, target } = await startMigrating(view, key);
    let moved = false;
    try {
      expect((await s.send('GET', lockingUrl, '/counter')).status).toBe(503);
      expect(JSON.parse((await s.send('GET', lockingUrl, '/read')).body).count).toBe(1); // nothing applied
      const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')) as string[];
      await source.call('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
      moved = true;
      expect(JSON.parse((await s.send('GET', lockingUrl, '/counter')).body)).toEqual({ count: 2 });
    } finally {
      // Finished as redis-cli would (the slot goes to the target), or undone when nothing moved.
      if (moved) {
        for (const master of view)
          await processOf(cluster, master.port)
            .admin()
            .call('CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id);
        await waitForSlotAgreement(cluster);
      } else {
        for (const admin of [source, target]) await admin.call('CLUSTER', 'SETSLOT', String(slot), 'STABLE');
      }
    }
    expect(JSON.parse((await s.send('GET', lockingUrl, '/counter')).body)).toEqual({ count: 3 });
  }, 30_000);

  // The reverse: the lock was taken before the migration, and the data key moved while the lock key stayed on the
  // source. The commit runs on the target (ASK), which holds no lock.
  it('with session.lock, a request whose data moved while its lock stayed on the source answers 409 and applies nothing', async () => {
    const view = await clusterMasters(cluster);
    const s = new SessionClient('lock1', client);
    expect(JSON.parse((await s.send('GET', lockingUrl, '/counter')).body)).toEqual({ count: 1 });
    const key = dataKey(APP, s.key!);
    const held = gate('reverse-migration');
    const pending = s.send('POST', lockingUrl, '/gated/reverse-migration/increment');
    await held.reached(1); // loaded, under a lock taken on the slot's owner
    const { slot, to, source } = await startMigrating(view, key);
    try {
      await source.call('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', key); // the data only
      await expect(source.exists(key)).rejects.toThrow(/^ASK /);
      held.release();
      const late = await pending;
      expect(late.status).toBe(409);
      expect(JSON.parse(late.body)).toMatchObject({ code: 'SESSION_LOCK_LOST' });
      expect(JSON.parse((await s.send('GET', lockingUrl, '/read')).body).count).toBe(1); // nothing applied
    } finally {
      releaseAllGates();
      await finishMigrating(view, slot, to, source); // the rest of the slot moves, as redis-cli would finish it
    }
    // Sent again, it works.
    expect(JSON.parse((await s.send('GET', lockingUrl, '/counter')).body)).toEqual({ count: 2 });
  }, 30_000);

  // A request whose cookie's session is gone starts one; its commit reads the key's ended mark when the data key is
  // missing, which the source of a migrating slot answers with ASK: the script runs on the target, which holds no mark.
  it("a request whose cookie's session is gone writes one while its slot migrates: 200, the value kept once the slot moved", async () => {
    const view = await clusterMasters(cluster);
    const s = new SessionClient('mig1', client);
    expect(JSON.parse((await s.send('GET', urls[1], '/counter')).body)).toEqual({ count: 1 });
    expect((await s.send('POST', urls[1], '/clear')).status).toBe(200);
    const key = dataKey(APP, s.key!);
    const { slot, to, source } = await startMigrating(view, key);
    try {
      expect(JSON.parse((await s.send('GET', urls[1], '/counter')).body)).toEqual({ count: 1 });
      expect(dataKey(APP, s.key!)).toBe(key); // under the cookie's key: the commit that reads the mark
    } finally {
      await finishMigrating(view, slot, to, source);
    }
    expect(JSON.parse((await s.send('GET', urls[0], '/counter')).body)).toEqual({ count: 2 });
  }, 30_000);

  // regenerate()'s take leaves an ended mark next to the data; while the slot migrates, the source refuses
  // a key it does not hold ("non local key"): the session moves without the mark instead of failing.
  it('regenerate() of a session whose slot is migrating (the source still holds it) moves it, without a mark', async () => {
    const view = await clusterMasters(cluster);
    const s = new SessionClient('mig0', client);
    expect(JSON.parse((await s.send('GET', urls[0], '/counter')).body)).toEqual({ count: 1 });
    const oldKey = s.key!;
    const { slot, source, target } = await startMigrating(view, dataKey(APP, oldKey));
    try {
      expect((await s.send('POST', urls[0], '/regenerate')).status).toBe(200);
      expect(s.key).not.toBe(oldKey);
      expect(JSON.parse((await s.send('GET', urls[0], '/counter')).body)).toEqual({ count: 2 });
      // The old key is gone from the source (which now answers ASK for it) and is not on the target.
      await expect(source.exists(dataKey(APP, oldKey))).rejects.toThrow(/^ASK /);
      const [, [, onTarget]] = (await target.pipeline().asking().exists(dataKey(APP, oldKey)).exec())!;
      expect(onTarget).toBe(0);
    } finally {
      for (const admin of [source, target]) await admin.call('CLUSTER', 'SETSLOT', String(slot), 'STABLE');
    }
  }, 30_000);
});
