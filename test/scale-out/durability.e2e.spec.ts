import request from 'supertest';
import { CaptureLogger } from '../support/capture-logger.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { CommandMonitor } from '../support/redis/index.js';

const COOKIE = '.Nest.Session';

/**
 * Until the replica acknowledges writes. Its link is up before that: after a diskless sync the master
 * streams commands to it (WAIT's GETACK included) only once the replica sent its first periodic ACK, up to
 * a second later, and a WAIT before that times out.
 */
async function waitForSync(master: RedisServerProcess, replica: RedisServerProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const info = await replica.admin().info('replication');
    if (/master_link_status:up/.test(info)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await master.admin().set('durability-probe', '1');
  if (Number(await master.admin().call('WAIT', '1', '5000')) < 1) throw new Error('replica did not sync');
  await master.admin().del('durability-probe');
}

describe('durability: waitForReplicas', () => {
  let master: RedisServerProcess;
  let replica: RedisServerProcess;
  beforeAll(async () => {
    master = await RedisServerProcess.start({ extraArgs: ['--repl-diskless-sync-delay', '0'] });
    replica = await RedisServerProcess.start({
      extraArgs: ['--replicaof', master.host, String(master.port)],
    });
    await waitForSync(master, replica);
  });
  afterAll(async () => {
    await replica.stop();
    await master.stop();
  });

  it('a commit returns once a replica acknowledged it, in the same round trip, and the replica holds it', async () => {
    const { app, url } = await startSessionApp({
      redis: { host: master.host, port: master.port, applicationName: 'dur', waitForReplicas: 1 },
    });
    try {
      const first = await request(url).get('/counter').expect(200, { count: 1 });
      const cookie = cookiePair(first, COOKIE);
      const key = cookie.split('=')[1].split('.')[0];
      expect(await replica.admin().hkeys(`{dur_${key}}_Data`)).toEqual(['count']);
      const monitor = await CommandMonitor.start(master);
      try {
        await monitor.settle();
        monitor.reset();
        await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
        await monitor.settle();
        const commands = monitor.commands().filter((c) => !/^(REPLCONF|PING)$/.test(c));
        expect(commands).toEqual([
          expect.stringMatching(/^EVAL(SHA)?$/),
          expect.stringMatching(/^EVAL(SHA)?$/),
          'WAIT',
        ]);
      } finally {
        await monitor.stop();
      }
    } finally {
      await app.close();
    }
  });

  it('a replica that stops acknowledging: the commit fails (503 with throwOnError) within the wait timeout', async () => {
    const { app, url } = await startSessionApp({
      redis: {
        host: master.host,
        port: master.port,
        waitForReplicas: 1,
        waitForReplicasTimeoutInMilliseconds: 300,
      },
    });
    try {
      const cookie = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const paused = replica.pause(1500);
      const started = Date.now();
      await request(url).get('/counter').set('Cookie', cookie).expect(503);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(300);
      expect(elapsed).toBeLessThan(2000);
      await paused;
    } finally {
      await app.close();
    }
  });

  it('more waitForReplicas than the master has replicas online: a warning at startup naming the option and the fix', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp(
      {
        redis: {
          host: master.host,
          port: master.port,
          waitForReplicas: 2, // only one replica exists
          waitForReplicasTimeoutInMilliseconds: 200,
        },
      },
      { logger },
    );
    try {
      expect(logger.lines.map((line) => line.message)).toContainEqual(
        expect.stringMatching(
          /^\[RedisTooFewReplicas\] waitForReplicas is 2, but the Redis master at \S+ has 1 replica online: .*lower waitForReplicas/,
        ),
      );
      await request(url).get('/counter').expect(503); // what it warned of
    } finally {
      await app.close();
    }
  });

  it('rejects invalid durability options at startup', async () => {
    await expect(
      startSessionApp({ redis: { host: master.host, port: master.port, waitForReplicas: -1 } }),
    ).rejects.toThrow(/waitForReplicas/);
  });
});
