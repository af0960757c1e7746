import { Redis } from 'ioredis';
import {
  RedisInvalidations,
  type InvalidationSink,
} from '../../libs/session-state/src/cache/redis/redis-invalidations.js';
import { RedisServerProcess } from '../support/redis/index.js';

/** A sink that records what the invalidation channel does to it. */
class RecordingSink implements InvalidationSink {
  isActive = false;
  readonly invalidated: string[] = [];
  deactivations = 0;
  barrier: (() => Promise<boolean>) | undefined;
  invalidate(key: string): void {
    this.invalidated.push(key);
  }
  flushes = 0;
  flush(): void {
    this.flushes++;
  }
  activate(): void {
    this.isActive = true;
  }
  deactivate(): void {
    this.isActive = false;
    this.deactivations++;
  }
  useBarrier(barrier: () => Promise<boolean>): void {
    this.barrier = barrier;
  }
}

/** Blocks this process's event loop for `ms` (a saturated app: a burst of handshakes, a long GC). */
function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: no timer and no socket is served meanwhile
  }
}

describe('Redis invalidations (the near cache channel) on a real Redis', () => {
  const BARRIER_TIMEOUT = 100;
  let server: RedisServerProcess;
  let client: Redis;
  let sink: RecordingSink;
  let invalidations: RedisInvalidations;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
  });
  beforeEach(async () => {
    client = new Redis({ host: server.host, port: server.port, keyPrefix: 'pfx:', lazyConnect: true });
    await client.connect(); // the store's connection is up before its invalidations start
    sink = new RecordingSink();
    invalidations = new RedisInvalidations(client, sink, 2_000, true, BARRIER_TIMEOUT);
    await invalidations.start();
  });
  afterEach(async () => {
    await invalidations.close();
    client.disconnect();
  });
  afterAll(() => server.stop());

  it('hands the sink a key read through a client with keyPrefix under the name the client used, without the prefix', async () => {
    await client.hget('{app_k}_Data', 'f'); // tracked for this connection as pfx:{app_k}_Data
    await server.admin().hset('pfx:{app_k}_Data', 'f', 'v'); // another client's write
    const deadline = Date.now() + 2_000;
    while (sink.invalidated.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(sink.invalidated).toEqual(['{app_k}_Data']);
  });

  it('a message a client PUBLISHed on the channel (not a key list from Redis) drops every copy and is otherwise ignored; the process lives on', async () => {
    await client.get('published');
    const publisher = new Redis({ host: server.host, port: server.port });
    try {
      for (const message of ['x', '', '["pfx:published"]']) {
        const flushes = sink.flushes;
        expect(await publisher.publish('__redis__:invalidate', message)).toBeGreaterThanOrEqual(1);
        await client.ping(); // the subscriber's message, sent before this answer, is handled
        await new Promise((resolve) => setImmediate(resolve));
        expect(sink.flushes).toBe(flushes + 1); // before: a RangeError thrown from ioredis' reply handler
      }
      // Still tracking: Redis's own invalidation of a read key arrives as before.
      await client.get('again');
      await publisher.set('pfx:again', '1');
      await client.ping();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sink.invalidated).toContain('again');
    } finally {
      publisher.disconnect();
    }
  });

  it('a data connection lost while the subscriber sets up again: the same subscriber is kept, and tracking is on once the data connection is back', async () => {
    const subscriber = (invalidations as unknown as { subscriber: Redis }).subscriber;
    const subscribe = subscriber.subscribe.bind(subscriber) as (channel: string) => Promise<unknown>;
    let dataConnectionLost = false;
    // The subscriber's setup, between its CLIENT ID and its SUBSCRIBE: the data connection drops (and reconnects).
    (subscriber as unknown as { subscribe: (channel: string) => Promise<unknown> }).subscribe = async (
      channel,
    ) => {
      if (!dataConnectionLost) {
        dataConnectionLost = true;
        const closed = new Promise((resolve) => client.once('close', resolve));
        client.disconnect(true);
        await closed;
      }
      return subscribe(channel);
    };
    subscriber.disconnect(true); // its ready sets up again (a new client id)
    const deadline = Date.now() + 3_000;
    while (!(dataConnectionLost && sink.isActive && client.status === 'ready') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(dataConnectionLost).toBe(true);
    expect(sink.isActive).toBe(true);
    // Tracking really reaches this subscriber: another client's write to a key read now is heard.
    sink.invalidated.length = 0;
    await client.hget('{app_r}_Data', 'f');
    await server.admin().hset('pfx:{app_r}_Data', 'f', 'v');
    while (sink.invalidated.length === 0 && Date.now() < deadline + 2_000)
      await new Promise((r) => setTimeout(r, 10));
    expect(sink.invalidated).toEqual(['{app_r}_Data']);
  });

  it('an INFO of the data connection that fails (not refused by the ACL) leaves the servers unconfirmed: tracking waits for a check that answers', async () => {
    const events: string[] = [];
    const activate = sink.activate.bind(sink);
    sink.activate = () => {
      events.push('activate');
      activate();
    };
    const info = client.info.bind(client) as (section: string) => Promise<string>;
    let failures = 1;
    (client as unknown as { info: (section: string) => Promise<string> }).info = async (section) => {
      if (failures-- > 0) {
        events.push('info failed');
        throw new Error('Command timed out');
      }
      const answer = await info(section);
      events.push('info answered');
      return answer;
    };
    const subscriber = (invalidations as unknown as { subscriber: Redis }).subscriber;
    subscriber.disconnect(true); // its ready sets tracking up again, comparing the two connections' servers
    const deadline = Date.now() + 4_000;
    while (!events.includes('activate') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['info failed', 'info answered', 'activate']);
    expect(sink.isActive).toBe(true);
  });

  it('a retry pending after an unconfirmed check is dropped once a later setup succeeds: it does not replace the working subscriber', async () => {
    const info = client.info.bind(client) as (section: string) => Promise<string>;
    let failures = 1;
    (client as unknown as { info: (section: string) => Promise<string> }).info = (section) =>
      failures-- > 0 ? Promise.reject(new Error('Command timed out')) : info(section);
    const subscriber = (invalidations as unknown as { subscriber: Redis }).subscriber;
    subscriber.disconnect(true); // its setup fails the check: a retry in APART_RETRY_MS (1 s) is pending
    let deadline = Date.now() + 4_000;
    while (failures > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50)); // the failed setup settles (its retry scheduled)
    expect(sink.isActive).toBe(false);
    // Before the retry fires, the data connection reconnects: its setup checks again, and succeeds.
    client.disconnect(true);
    deadline = Date.now() + 4_000;
    while (!sink.isActive && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(sink.isActive).toBe(true);
    const deactivations = sink.deactivations;
    const subscriberId = () => (invalidations as unknown as { subscriberId?: string }).subscriberId;
    const id = subscriberId();
    expect(id).toBeDefined();
    await new Promise((r) => setTimeout(r, 1_500)); // past the retry the failed check scheduled
    expect(sink.deactivations).toBe(deactivations);
    expect(sink.isActive).toBe(true);
    expect(subscriberId()).toBe(id);
  });

  it('a barrier whose reply arrived while the event loop was blocked past its timeout confirms, and keeps the connection', async () => {
    const confirmed = sink.barrier!();
    // Right after the barrier's PING went out (its setImmediate ran just before this one), before the reply is read.
    await new Promise((resolve) => setImmediate(resolve));
    blockEventLoop(3 * BARRIER_TIMEOUT); // Redis answers meanwhile; the reply waits in the socket
    expect(await confirmed).toBe(true);
    expect(sink.deactivations).toBe(0);
    expect(sink.isActive).toBe(true);
  });
});
