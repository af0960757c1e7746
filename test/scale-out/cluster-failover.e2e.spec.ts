import type { INestApplication } from '@nestjs/common';
import { SessionStore } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { CLUSTER_BUS_OFFSET, RedisClusterProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';
import {
  LoopbackClient,
  Outcomes,
  SECRETS,
  SessionClient,
  clusterMasters,
  dataKey,
  errorStats,
  ownsSlot,
  partition,
  percentile,
  processOf,
  sleep,
  waitUntil,
  waitForReplicaAcks,
  type MasterView,
} from './support/load.js';

/**
 * Issue 8, part 3: a master process is SIGKILLed while requests run. Its replica is promoted (after the
 * harness's `cluster-node-timeout` of 2 s plus the election) and requests succeed again without an app
 * restart. With `waitForReplicas: 1` every commit acknowledged (2xx) before the kill is still there
 * after the failover. A second instance without it runs alongside, for the cost and for comparison.
 */
const APP = 'fo';
const SESSIONS = 160;
const WORKERS = 16;
const WARM_MS = 2_500;
const RECOVERY_LIMIT_MS = 15_000;

interface Tracked {
  s: SessionClient;
  durable: boolean;
  onVictim: boolean;
  /** Last count acknowledged by a 2xx whose response arrived before the kill. */
  ackedBeforeKill: number;
  /** Every 2xx count in order: must strictly increase (a lower or equal one is a lost commit). */
  acked: number[];
  failuresSinceAck: number;
  firstFailureAfterKill?: number;
  firstSuccessAfterKill?: number;
}

describe('failover of a Redis Cluster master under load', () => {
  let cluster: RedisClusterProcess;
  const apps: INestApplication[] = [];
  const logger = new CaptureLogger();
  const client = new LoopbackClient(WORKERS);

  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 1 });
    await waitForReplicaAcks(cluster); // the waitForReplicas instance's first commits need it
  }, 40_000);

  afterAll(async () => {
    client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cluster?.stop();
  });

  it('SIGKILL of a master: the replica takes over, requests succeed again without a restart, and no acknowledged commit is lost with waitForReplicas: 1', async () => {
    const clusterNodes = cluster.nodes.map((n) => `${n.host}:${n.port}`);
    const urls: string[] = [];
    for (const waitForReplicas of [1, 0]) {
      const { app, url } = await startSessionApp(
        {
          secrets: SECRETS,
          redis: { clusterNodes, applicationName: APP, waitForReplicas, operationTimeoutInMilliseconds: 500 },
        },
        { logger }, // Nest's Logger is static: both instances log here
      );
      apps.push(app);
      urls.push(url);
    }
    const tracked: Tracked[] = Array.from({ length: SESSIONS }, (_, i) => ({
      s: new SessionClient(`f${i}`, client),
      durable: i % 2 === 0,
      onVictim: false,
      ackedBeforeKill: 0,
      acked: [],
      failuresSinceAck: 0,
    }));
    const urlOf = (t: Tracked) => urls[t.durable ? 0 : 1];
    const outcomes = { durable: new Outcomes(), plain: new Outcomes() };
    const latency = { durable: [] as number[], plain: [] as number[] };
    let killAt = Infinity;

    async function step(t: Tracked): Promise<void> {
      const res = await t.s.send('GET', urlOf(t), '/counter', { timeoutMs: 5_000 });
      const arrived = Date.now();
      outcomes[t.durable ? 'durable' : 'plain'].add(res, `GET /counter ${t.s.name}`);
      if (arrived < killAt) latency[t.durable ? 'durable' : 'plain'].push(res.ms);
      if (res.status !== 200) {
        t.failuresSinceAck++;
        if (arrived >= killAt) t.firstFailureAfterKill ??= arrived;
        return;
      }
      const { count } = JSON.parse(res.body) as { count: number };
      t.acked.push(count);
      t.failuresSinceAck = 0;
      if (arrived < killAt) t.ackedBeforeKill = count;
      else t.firstSuccessAfterKill ??= arrived;
    }

    // Every session exists before the load starts. The instances' operation timeout is 500 ms, which a busy
    // CI machine can overrun (a 503): a session's first request is then sent again. Every answer still
    // counts in the outcomes, whose final check admits none but 200s and 503s.
    await Promise.all(
      partition(tracked, WORKERS).map(async (group) => {
        for (const t of group)
          for (let attempt = 1; attempt <= 5 && t.acked.length === 0; attempt++) await step(t);
      }),
    );
    expect(
      tracked.filter((t) => t.acked.length !== 1).map((t) => `${t.s.name}: ${t.s.history.join(' | ')}`),
    ).toEqual([]);

    const masters = await clusterMasters(cluster);
    const victim = masters[0];
    for (const t of tracked) t.onVictim = ownsSlot(victim, await cluster.keySlot(dataKey(APP, t.s.key!)));
    const onVictim = tracked.filter((t) => t.onVictim);
    expect(onVictim.length).toBeGreaterThan(10);

    const errorsBefore = await errorStats(cluster);
    let stop = false;
    const loadStarted = Date.now();
    const load = Promise.all(
      partition(tracked, WORKERS).map(async (group) => {
        while (!stop && Date.now() - loadStarted < WARM_MS + RECOVERY_LIMIT_MS + 5_000)
          for (const t of group) await step(t);
      }),
    );

    let promotedAt = Infinity;
    let plainBackAt = Infinity;
    let rejoinedAt = Infinity;
    let durableBackAt = Infinity;
    const durableVictims = onVictim.filter((t) => t.durable);
    const plainVictims = onVictim.filter((t) => !t.durable);
    const readsAfterPromotion: { t: Tracked; status: number; count: number | null }[] = [];
    const durableReadStatuses: number[] = [];
    try {
      await sleep(WARM_MS);
      killAt = Date.now();
      await processOf(cluster, victim.port).kill();
      // The replica is promoted: three healthy masters again, the victim not among them.
      const promoted = await waitUntil(
        async () => {
          const now = await cluster.masters();
          return now.length === 3 && !now.some((m) => m.port === victim.port);
        },
        RECOVERY_LIMIT_MS,
        100,
      );
      promotedAt = Date.now();
      expect(promoted).toBe(true);
      // Every plain session of the dead master is served again (bounded).
      await waitUntil(
        () => plainVictims.every((t) => t.firstSuccessAfterKill !== undefined),
        RECOVERY_LIMIT_MS,
      );
      plainBackAt = Date.now();
      // The promoted master has no replica yet: commits waiting for one are refused (503). What was
      // acknowledged before the kill reads back from it already: through the plain instance (same
      // secrets and key layout), since the durable one's connection to that master is held by WAITs
      // that time out (Redis runs one connection's commands in order; a blocked WAIT delays the rest).
      for (const t of durableVictims) {
        const cookie = t.s.jar.header();
        const res = await client.send('GET', `${urls[1]}/read`, { cookie });
        readsAfterPromotion.push({
          t,
          status: res.status,
          count: res.status === 200 ? JSON.parse(res.body).count : null,
        });
        if (durableReadStatuses.length < 5)
          durableReadStatuses.push((await client.send('GET', `${urls[0]}/read`, { cookie })).status);
      }
      // The killed node comes back (same dir and nodes.conf): it rejoins as a replica of the promoted
      // master, and durable commits are acknowledged again.
      await processOf(cluster, victim.port).restart();
      rejoinedAt = Date.now();
      await waitUntil(
        () => durableVictims.every((t) => t.firstSuccessAfterKill !== undefined),
        RECOVERY_LIMIT_MS,
      );
      durableBackAt = Date.now();
      await sleep(500);
    } finally {
      stop = true;
      await load;
    }

    // Availability figures (errorstats of the nodes alive now: what the cluster answered meanwhile).
    const errorsAfter = await errorStats(cluster);
    const answered = Object.keys(errorsAfter)
      .map((name) => `${name} ${errorsAfter[name] - (errorsBefore[name] ?? 0)}`)
      .join(', ');
    const downFor = (list: Tracked[]) => list.map((t) => (t.firstSuccessAfterKill ?? Infinity) - killAt);
    const others = tracked.filter((t) => !t.onVictim);
    const failedMeanwhile = (durable: boolean) =>
      `${others.filter((t) => t.durable === durable && t.firstFailureAfterKill !== undefined).length} of ${others.filter((t) => t.durable === durable).length}`;
    console.log(
      [
        `failover: master ${victim.port} (${onVictim.length} of ${SESSIONS} sessions) SIGKILLed; replica promoted ` +
          `after ${promotedAt - killAt} ms (cluster-node-timeout 2000 ms)`,
        `its sessions unavailable (kill -> first 2xx): plain median ${percentile(downFor(plainVictims), 50)} ms, ` +
          `max ${Math.max(...downFor(plainVictims))} ms (all back ${plainBackAt - killAt} ms after the kill)`,
        `  waitForReplicas: 1: acknowledged values read back after promotion through the plain instance for ` +
          `${readsAfterPromotion.filter((r) => r.status === 200).length} of ${readsAfterPromotion.length} sessions ` +
          `(through the durable instance itself: ${durableReadStatuses.join(',')}); ` +
          `commits refused until the killed node rejoined as a replica (restarted ${rejoinedAt - killAt} ms ` +
          `after the kill), all back ${durableBackAt - killAt} ms after the kill, max ${Math.max(...downFor(durableVictims))} ms`,
        `sessions of the other masters that saw a failure meanwhile: plain ${failedMeanwhile(false)}, ` +
          `durable ${failedMeanwhile(true)}; errors the surviving nodes answered: ${answered || 'none'}`,
        `durable (waitForReplicas: 1): ${outcomes.durable.summary()}; plain: ${outcomes.plain.summary()}`,
        `log: ${logger.lines.filter((l) => /Redis is failing/.test(l.message)).length} "Redis is failing" and ` +
          `${logger.lines.filter((l) => /Redis answers again/.test(l.message)).length} "Redis answers again" lines ` +
          `(one connection per instance: a dead shard next to healthy ones flips the state per request)`,
        `latency before the kill, p50/p99: durable ${percentile(latency.durable, 50).toFixed(1)}/` +
          `${percentile(latency.durable, 99).toFixed(1)} ms, plain ${percentile(latency.plain, 50).toFixed(1)}/` +
          `${percentile(latency.plain, 99).toFixed(1)} ms`,
      ].join('\n'),
    );
    expect(Math.max(...downFor(plainVictims))).toBeLessThan(RECOVERY_LIMIT_MS);
    expect(Math.max(...downFor(durableVictims))).toBeLessThan(RECOVERY_LIMIT_MS + (rejoinedAt - killAt));
    for (const r of readsAfterPromotion) {
      expect(r.status).toBe(200);
      expect(r.count).toBeGreaterThanOrEqual(r.t.ackedBeforeKill);
    }
    // Failures are 503s (never a hang, never a 500).
    for (const o of [outcomes.durable, outcomes.plain])
      expect(o.count((status) => status !== 200 && status !== 503)).toBe(0);

    // After the failover every session answers, without an app restart.
    const final = new Map<Tracked, number>();
    await Promise.all(
      partition(tracked, WORKERS).map(async (group) => {
        for (const t of group) {
          const res = await t.s.send('GET', urlOf(t), '/read');
          expect(res.status).toBe(200);
          final.set(t, JSON.parse(res.body).count as number);
        }
      }),
    );

    // Durability: with waitForReplicas: 1 no acknowledged count ever goes back, and what was acknowledged
    // before the kill is there after the failover (read back, and seen by the first request after it).
    const lost = (t: Tracked) => {
      const backwards = t.acked.some((count, i) => i > 0 && count <= t.acked[i - 1]);
      const last = t.acked[t.acked.length - 1];
      return backwards || final.get(t)! < last || final.get(t)! < t.ackedBeforeKill;
    };
    const durableLost = tracked.filter((t) => t.durable && lost(t));
    const plainLost = tracked.filter((t) => !t.durable && lost(t));
    console.log(
      `acknowledged commits lost in the failover: waitForReplicas 1: ${durableLost.length} sessions; ` +
        `plain: ${plainLost.length} sessions (asynchronous replication: may lose the last writes)`,
    );
    expect(durableLost.map((t) => `${t.s.name}: ${t.acked.join(',')} final ${final.get(t)}`)).toEqual([]);
    for (const t of tracked.filter((x) => x.durable)) {
      const last = t.acked[t.acked.length - 1];
      // A request that failed may still have been applied (its outcome is unknown to the client).
      expect(final.get(t)).toBeGreaterThanOrEqual(last);
      expect(final.get(t)).toBeLessThanOrEqual(last + t.failuresSinceAck);
      expect(t.ackedBeforeKill).toBeGreaterThan(1); // the load did run before the kill
    }
  }, 60_000);
});

/** An app on the Cluster whose seed nodes are `nodes` (`host:port`), with a short operation timeout. */
function startClusterApp(
  nodes: readonly string[],
  applicationName: string,
  operationTimeout: number,
  logger?: CaptureLogger,
) {
  return startSessionApp(
    {
      secrets: SECRETS,
      redis: { clusterNodes: [...nodes], applicationName, operationTimeoutInMilliseconds: operationTimeout },
    },
    logger ? { logger } : undefined,
  );
}

/** The sessions whose data the Cluster keeps in `master`'s slots. */
async function sessionsIn(
  cluster: RedisClusterProcess,
  master: MasterView,
  applicationName: string,
  sessions: readonly SessionClient[],
): Promise<SessionClient[]> {
  const held: SessionClient[] = [];
  for (const s of sessions)
    if (ownsSlot(master, await cluster.keySlot(dataKey(applicationName, s.key!)))) held.push(s);
  return held;
}

/**
 * A master that hangs with its connections open (SIGSTOP: a stopped process, a frozen VM, a partitioned host) is
 * not a closed connection: ioredis learns nothing from it, and an instance kept sending that shard's sessions to it,
 * 503 after 503, until it woke (a probe saw 17 to 36 s). A timed-out operation now has the slot map read again, so
 * its sessions answer again shortly after the replica's promotion.
 */
describe('a Redis Cluster master that hangs (SIGSTOP)', () => {
  const HANG_APP = 'hang';
  let cluster: RedisClusterProcess;
  let app: INestApplication | undefined;
  let probedApp: INestApplication | undefined;
  const client = new LoopbackClient(4);

  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3, replicasPerMaster: 1 });
    await waitForReplicaAcks(cluster);
  }, 40_000);

  afterAll(async () => {
    client.close();
    await app?.close();
    await probedApp?.close();
    await cluster?.stop();
  });

  it('is routed around once its replica is promoted: its sessions answer again within seconds, their counts intact', async () => {
    const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`);
    const started = await startClusterApp(seeds, HANG_APP, 500);
    app = started.app;
    // A second instance that gets nothing but health probes (as one a load balancer took out of rotation).
    const probed = await startClusterApp(seeds, HANG_APP, 500);
    probedApp = probed.app;
    const probedStore = probed.app.get(SessionStore);
    await probedStore.ping!();
    const sessions = Array.from({ length: 24 }, (_, i) => new SessionClient(`h${i}`, client));
    for (const s of sessions) {
      for (let attempt = 0; attempt < 5 && s.acknowledged === 0; attempt++) {
        const res = await s.send('GET', started.url, '/counter');
        if (res.status === 200) s.acknowledged = (JSON.parse(res.body) as { count: number }).count;
      }
    }
    expect(sessions.filter((s) => s.acknowledged !== 1).map((s) => s.history.join(' | '))).toEqual([]);

    const [victim, witness] = await clusterMasters(cluster);
    const onVictim = await sessionsIn(cluster, victim, HANG_APP, sessions);
    expect(onVictim.length).toBeGreaterThan(0);
    const witnessNode = processOf(cluster, witness.port);
    const frozen = processOf(cluster, victim.port);

    frozen.freeze();
    try {
      const promoted = await waitUntil(
        async () => {
          const now = await clusterMasters(cluster, witnessNode);
          return now.length === 3 && !now.some((m) => m.port === victim.port);
        },
        15_000,
        100,
      );
      expect(promoted).toBe(true);
      const promotedAt = Date.now();
      // Nothing else talks to the app meanwhile: only its own timed-out operations can tell it to read the map.
      const back = new Map<SessionClient, number>();
      await waitUntil(
        async () => {
          for (const s of onVictim) {
            if (back.has(s)) continue;
            const res = await s.send('GET', started.url, '/read', { timeoutMs: 3_000 });
            if (res.status === 200) back.set(s, Date.now() - promotedAt);
            else expect(res.status).toBe(503); // while it lasts: a 503 within the timeout, never a hang or a 500
          }
          return back.size === onVictim.length;
        },
        15_000,
        100,
      );
      expect(onVictim.filter((s) => !back.has(s)).map((s) => s.history.join(' | '))).toEqual([]);
      // Read back from the promoted replica: the count each session acknowledged before the hang.
      for (const s of onVictim) {
        const res = await s.send('GET', started.url, '/read');
        expect(JSON.parse(res.body)).toMatchObject({ available: true, count: 1 });
      }
      // The probed instance's own failed PINGs have it read the map: it reports up again (before, down until the
      // old master woke).
      let probedUpAfter: number | undefined;
      await waitUntil(
        async () => {
          const ok = await probedStore.ping!().then(
            () => true,
            () => false,
          );
          if (ok) probedUpAfter = Date.now() - promotedAt;
          return ok;
        },
        15_000,
        100,
      );
      expect(probedUpAfter).toBeDefined();
      console.log(
        `hung master ${victim.port}: ${onVictim.length} sessions; all answered again within ` +
          `${Math.max(...back.values())} ms of the promotion; the health-probed instance up after ${probedUpAfter} ms`,
      );
    } finally {
      frozen.thaw();
    }
  });
});

/**
 * A half-open connection to a Cluster node that still works (a NAT or load balancer forgot the path; no failover
 * follows, the node is healthy for the cluster): before, the node's sessions answered 503 until the kernel gave up on
 * the socket, minutes later (a probe: 25 s of 503s, no reconnect), since only standalone connections were watched. A
 * master's connection that owes replies and has read nothing for twice the operation timeout is checked with a second
 * connection, dropped when that one answers, and made again from the slot map.
 */
describe('a half-open connection to a healthy Redis Cluster node', () => {
  const PATH_APP = 'path';
  const OPERATION_TIMEOUT = 400;
  let cluster: RedisClusterProcess;
  let proxy: StallProxy | undefined;
  let app: INestApplication | undefined;
  const client = new LoopbackClient(4);

  beforeAll(async () => {
    cluster = await RedisClusterProcess.start({ masters: 3 });
  }, 40_000);

  afterAll(async () => {
    client.close();
    await app?.close();
    await proxy?.stop();
    await cluster?.stop();
  });

  it('is dropped once a second connection answers, and the node is connected again: its sessions answer, intact', async () => {
    const [target, ...others] = await clusterMasters(cluster);
    const node = processOf(cluster, target.port);
    proxy = await StallProxy.start({ host: '127.0.0.1', port: target.port });
    // The node announces the proxy to clients (the cluster bus stays direct): the app reaches it through the proxy.
    await node
      .admin()
      .call('CONFIG', 'SET', 'cluster-announce-bus-port', String(target.port + CLUSTER_BUS_OFFSET));
    await node.admin().call('CONFIG', 'SET', 'cluster-announce-port', String(proxy.port));
    // Every node must say so: a slot-map read from one that still names the node's own port would have the app
    // connect to it directly (and recover without the check under test).
    const seenThroughProxy = await waitUntil(
      async () => {
        for (const port of [target.port, ...others.map((m) => m.port)]) {
          const slots = (await processOf(cluster, port).admin().call('CLUSTER', 'SLOTS')) as unknown[][];
          const served = slots.filter((range) => range[0] === target.slots[0][0]);
          if (served.length !== 1 || (served[0][2] as unknown[])[1] !== proxy!.port) return false;
        }
        return true;
      },
      10_000,
      100,
    );
    expect(seenThroughProxy).toBe(true);

    const logger = new CaptureLogger();
    const started = await startClusterApp(
      others.map((m) => `127.0.0.1:${m.port}`),
      PATH_APP,
      OPERATION_TIMEOUT,
      logger,
    );
    app = started.app;
    const sessions = Array.from({ length: 16 }, (_, i) => new SessionClient(`p${i}`, client));
    for (const s of sessions) expect((await s.send('GET', started.url, '/counter')).status).toBe(200);
    const onTarget = await sessionsIn(cluster, target, PATH_APP, sessions);
    expect(onTarget.length).toBeGreaterThan(0);
    expect(proxy.connections).toBeGreaterThan(0);

    proxy.cutOff();
    const cutAt = Date.now();
    const statuses = new Set<number>();
    let backAfter: number | undefined;
    await waitUntil(
      async () => {
        const res = await onTarget[0].send('GET', started.url, '/read', { timeoutMs: 3_000 });
        statuses.add(res.status);
        if (res.status === 200) backAfter = Date.now() - cutAt;
        return res.status === 200;
      },
      8_000,
      50,
    );
    expect(backAfter).toBeDefined(); // before: 503 for as long as the kernel keeps the socket
    expect([...statuses].filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect(logger.has(/^\[RedisConnectionSilent\] Redis sent nothing on the connection for \d+ ms/)).toBe(
      true,
    );
    for (const s of onTarget) {
      const res = await s.send('GET', started.url, '/read');
      expect(JSON.parse(res.body)).toMatchObject({ available: true, count: 1 });
    }
    console.log(
      `half-open Cluster node ${target.port}: its sessions answered again ${backAfter} ms after the cut`,
    );
  });
});
