import { Redis } from 'ioredis';
import { redisKeys } from 'nest-session-state';
import { RedisConnection, resolveRedisCacheOptions } from 'nest-session-state/redis';
import {
  PACK_MAX_BYTES,
  PACK_MAX_FIELDS,
  parseCommitReply,
  parseLoadReply,
  parseTrackedLoadReply,
} from '../../libs/session-state/src/cache/redis/redis-session.replies.js';
import { RedisServerProcess } from '../support/redis/index.js';

/**
 * The near cache relies on Redis client-side caching (default mode, without NOLOOP, as RedisInvalidations sets
 * it up): a load that skips the slide writes nothing and leaves the key tracked; a load that slides, a commit and
 * a refresh are heard by this connection as invalidations, as is a key that expires under its own command. Checked
 * here on a real Redis, with the session scripts themselves.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('session scripts on a real Redis (under CLIENT TRACKING)', () => {
  let server: RedisServerProcess;
  let connection: RedisConnection;
  let subscriber: Redis;
  let other: Redis;
  const invalidated: string[] = [];

  beforeAll(async () => {
    server = await RedisServerProcess.start({ extraArgs: ['--enable-debug-command', 'yes'] });
    connection = new RedisConnection(resolveRedisCacheOptions({ host: server.host, port: server.port }));
    await connection.connect();
    subscriber = new Redis({ host: server.host, port: server.port, protocol: 2 });
    const id = await subscriber.client('ID');
    await subscriber.subscribe('__redis__:invalidate');
    subscriber.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | null) =>
      invalidated.push(...(keys ?? []).map(String)),
    );
    await connection.client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id));
    other = new Redis({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    other.disconnect();
    subscriber.disconnect();
    await connection.close();
    await server.stop();
  });

  async function invalidationsAfter(action: () => Promise<unknown>): Promise<string[]> {
    invalidated.length = 0;
    await action();
    await connection.client.ping(); // the subscriber's messages, if any, were sent before this answer
    await subscriber.ping();
    return [...invalidated];
  }

  const IDLE = 1_200_000;
  /** The commit script's deadline (0: none), maxKeys, maxSessionBytes and lock token ('': none), for calls made by hand. */
  const NO_LIMITS = [0, 1000, 1_000_000, ''] as const;
  it("a load that skips the slide writes nothing: no invalidation, and another client's write is then heard", async () => {
    const key = redisKeys.sessionData('tracking', `k${Math.random()}`);
    await other.hset(key, 'seed', '1');
    await other.pexpire(key, IDLE);
    expect(await invalidationsAfter(() => connection.script('sessionLoadTracked', key, IDLE, IDLE))).toEqual(
      [],
    );
    expect(await invalidationsAfter(() => other.hset(key, 'by-other', '1'))).toEqual([key]);
  });

  // The module tracks without NOLOOP (RedisInvalidations): its own writes are heard too, and so is what Redis does
  // to other keys while running its command (with NOLOOP, that was withheld: copies stayed stale).
  it.each<[string, (key: string) => Promise<unknown>]>([
    ['a load that slides', (key) => connection.script('sessionLoadTracked', key, IDLE, 0)],
    ['a commit', (key) => connection.script('sessionCommit', key, IDLE, '0', ...NO_LIMITS, 0, 'count', 'x')],
    ['a refresh', (key) => connection.client.pexpire(key, IDLE)],
  ])('%s of a session this connection read is heard as an invalidation', async (_name, run) => {
    const key = redisKeys.sessionData('tracking', `k${Math.random()}`);
    await other.hset(key, 'seed', '1');
    await other.pexpire(key, IDLE / 2); // due for a slide
    await connection.script('sessionLoadTracked', key, IDLE, IDLE); // read without a write: tracked
    expect(await invalidationsAfter(() => run(key))).toEqual([key]);
  });

  it("a key that expires as this connection's own command touches it is heard as an invalidation", async () => {
    const key = redisKeys.sessionData('tracking', `k${Math.random()}`);
    await other.hset(key, 'seed', '1');
    await connection.script('sessionLoadTracked', key, IDLE, IDLE); // tracked
    await other.pexpire(key, 50);
    await other.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
    try {
      await sleep(100); // expired, not yet reclaimed
      expect(
        await invalidationsAfter(() =>
          connection.script('sessionCommit', key, IDLE, '0', ...NO_LIMITS, 0, 'late', 'x'),
        ),
      ).toContain(key);
    } finally {
      await other.call('DEBUG', 'SET-ACTIVE-EXPIRE', '1');
    }
  });

  it('sessionLoadTracked slides only when due, sets a missing TTL, shortens one longer than the idle timeout, and reports the time left', async () => {
    const load = async (key: string, idle: number, skip: number) =>
      parseTrackedLoadReply(
        (await connection.script('sessionLoadTracked', key, idle, skip)) as Buffer | null,
      );
    const key = redisKeys.sessionData('slides', 'k');
    await other.hset(key, 'count', '1');
    // No TTL (-1): set, whatever the skip window.
    let reply = await load(key, 10_000, 5_000);
    expect(reply?.timeLeftMs).toBe(10_000);
    expect(await other.pttl(key)).toBeGreaterThan(9_000);
    // Within the skip window: no write, and the time left is reported.
    await other.pexpire(key, 8_000);
    reply = await load(key, 10_000, 5_000);
    expect([...reply!.data].map(([name, value]) => [name, String(value)])).toEqual([['count', '1']]);
    expect(reply!.timeLeftMs).toBeLessThanOrEqual(8_000);
    expect(reply!.timeLeftMs).toBeGreaterThan(7_000);
    expect(await other.pttl(key)).toBeLessThanOrEqual(8_000);
    // Due: slid to the idle timeout.
    await other.pexpire(key, 4_000);
    reply = await load(key, 10_000, 5_000);
    expect(reply!.timeLeftMs).toBe(10_000);
    expect(await other.pttl(key)).toBeGreaterThan(9_000);
    // More left than the idle timeout (it was lowered): set to it.
    await other.pexpire(key, 50_000);
    await load(key, 10_000, 0);
    expect(await other.pttl(key)).toBeLessThanOrEqual(10_000);
    // No session: a nil reply, nothing created.
    expect(
      await connection.script('sessionLoadTracked', redisKeys.sessionData('slides', 'none'), 10_000, 0),
    ).toBeNull();
    expect(await other.exists(redisKeys.sessionData('slides', 'none'))).toBe(0);
  });
});

/** Without a near cache the session scripts run only what the session needs: no PTTL, no time-left reply. */
describe('plain session scripts (no near cache) on a real Redis', () => {
  let server: RedisServerProcess;
  let connection: RedisConnection;
  let other: Redis;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    connection = new RedisConnection(resolveRedisCacheOptions({ host: server.host, port: server.port }));
    await connection.connect();
    other = new Redis({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    other.disconnect();
    await connection.close();
    await server.stop();
  });

  /** Calls per command since `CONFIG RESETSTAT` (commands a script runs count as themselves). */
  async function commandCalls(): Promise<Record<string, number>> {
    const info = await other.info('commandstats');
    const calls: Record<string, number> = {};
    for (const [, name, count] of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) calls[name] = Number(count);
    delete calls.info;
    delete calls.config;
    return calls;
  }

  it('sessionLoad: every field and the idle timeout slid (HGETALL + PEXPIRE), no time-left reply; nothing for a missing session', async () => {
    const key = redisKeys.sessionData('plain', 'load');
    await other.hset(key, 'count', '1', 'name', 'x');
    await connection.script('sessionLoad', key, 10_000); // ioredis sends a script's first call as EVAL
    await other.call('CONFIG', 'RESETSTAT');
    const reply = parseLoadReply((await connection.script('sessionLoad', key, 10_000)) as Buffer);
    expect([...reply!].map(([name, value]) => [name, String(value)])).toEqual([
      ['count', '1'],
      ['name', 'x'],
    ]);
    expect(await commandCalls()).toEqual({ evalsha: 1, hgetall: 1, pexpire: 1 });
    expect(await other.pttl(key)).toBeGreaterThan(9_000);
    const missing = redisKeys.sessionData('plain', 'none');
    expect(await connection.script('sessionLoad', missing, 10_000)).toBeNull();
    expect(await other.exists(missing)).toBe(0);
  });

  it('sessionCommit: writes only the changes and slides (HDEL/HSET + PEXPIRE, with TIME, HLEN and HSTRLEN for its checks); clear; removing every field leaves no key', async () => {
    const key = redisKeys.sessionData('plain', 'commit');
    const NO_LIMITS = [0, 1000, 1_000_000, ''] as const;
    await other.hset(key, 'a', '1', 'b', '2');
    await connection.script('sessionCommit', key, 10_000, '0', ...NO_LIMITS, 0); // the first call goes as EVAL
    await other.call('CONFIG', 'RESETSTAT');
    // Removes a (1 byte) and sets c to the same size: nothing grows, so no limit needs the totals.
    await connection.script('sessionCommit', key, 10_000, '0', ...NO_LIMITS, 1, 'a', 'c', '3');
    expect(await commandCalls()).toEqual({
      evalsha: 1,
      time: 1, // the deadline check
      hstrlen: 2, // a and c: how the bytes change
      hexists: 1, // c is new (HSTRLEN 0): HEXISTS tells it from an empty value
      lpushx: 1, // a removal before the sets: the check of a full Redis that the HDEL would skip (it writes nothing)
      hdel: 1,
      hset: 1,
      hlen: 1, // something was removed: is the session empty now?
      pexpire: 1,
    });
    expect(await other.hgetall(key)).toEqual({ b: '2', c: '3' });
    expect(await other.pttl(key)).toBeGreaterThan(9_000);
    await connection.script('sessionCommit', key, 10_000, '1', ...NO_LIMITS, 0, 'd', '4');
    expect(await other.hgetall(key)).toEqual({ d: '4' });
    await connection.script('sessionCommit', key, 10_000, '0', ...NO_LIMITS, 1, 'd');
    expect(await other.exists(key)).toBe(0);
  });

  // 'e' is what a request that loaded its session sends: the moved/abandoned check costs it nothing here.
  it.each(['0', 'e'])(
    "sessionCommit (mode '%s'): a replaced value of the same size costs TIME and one HSTRLEN more than the writes",
    async (mode) => {
      const key = redisKeys.sessionData('plain', `rmw-${mode}`);
      await other.hset(key, 'count', '0001', 'name', 'x');
      await connection.script('sessionCommit', key, 10_000, mode, 0, 1000, 1_000_000, '', 0, 'count', '0002');
      await other.call('CONFIG', 'RESETSTAT');
      await connection.script('sessionCommit', key, 10_000, mode, 0, 1000, 1_000_000, '', 0, 'count', '0003');
      expect(await commandCalls()).toEqual({ evalsha: 1, time: 1, hstrlen: 1, hset: 1, pexpire: 1 });
    },
  );

  it("sessionCommit of a loaded session ('e', 'f', guarded): a moved key answers 5, an abandoned one 4, applying nothing; without a mark the delta applies", async () => {
    const commit = async (key: string, mode: string, ...delta: string[]) =>
      parseCommitReply(
        await connection.script('sessionCommit', key, 10_000, mode, 0, 1000, 1_000_000, '', 0, ...delta),
      ).status;
    const moved = redisKeys.sessionData('plain', 'moved');
    await other.hset(moved, 'a', '1');
    await connection.script('sessionTake', moved, 60_000, '');
    expect(await other.get(redisKeys.sessionEnded('plain', 'moved'))).toBe('m');
    expect(await other.pttl(redisKeys.sessionEnded('plain', 'moved'))).toBeGreaterThan(59_000);
    expect(await commit(moved, 'e', 'b', '2')).toBe(5);
    expect(await commit(moved, 'f', 'b', '2')).toBe(5);
    expect(await commit(moved, 'gsome-id', 'b', '2')).toBe(5);
    // Told it moved, not that it would be over maxKeys (1 here).
    const overKeys = await connection.script(
      'sessionCommit',
      moved,
      10_000,
      'e',
      0,
      1,
      1_000_000,
      '',
      0,
      'x',
      '1',
      'y',
      '2',
    );
    expect(parseCommitReply(overKeys).status).toBe(5);
    expect(await other.exists(moved)).toBe(0);
    // A request that loaded nothing (a new session under the same cookie) writes as usual.
    expect(await commit(moved, '0', 'b', '2')).toBe(1);
    expect(await other.hgetall(moved)).toEqual({ b: '2' });

    const abandoned = redisKeys.sessionData('plain', 'abandoned');
    await other.hset(abandoned, 'a', '1');
    await connection.script('sessionEnd', abandoned, 60_000, '');
    expect(await other.get(redisKeys.sessionEnded('plain', 'abandoned'))).toBe('a');
    expect(await commit(abandoned, 'e', 'b', '2')).toBe(4);
    expect(await commit(abandoned, 'f', 'b', '2')).toBe(4);
    expect(await other.exists(abandoned)).toBe(0);

    // Emptied by a delta (no mark): a concurrent request's new key brings it back, as it must.
    const emptied = redisKeys.sessionData('plain', 'emptied');
    expect(await commit(emptied, 'e', 'b', '2')).toBe(1);
    expect(await other.hgetall(emptied)).toEqual({ b: '2' });
  });

  it('sessionCommit: a hash left with only the session id is deleted; the id does not count toward maxKeys', async () => {
    const key = redisKeys.sessionData('plain', 'only-id');
    await other.hset(key, '\u0000id', 'some-id', 'a', '1');
    await connection.script('sessionCommit', key, 10_000, '0', 0, 1, 1_000_000, '', 0, 'b', '2'); // a + b = 2 keys > 1
    expect(await other.hkeys(key)).toEqual(['\u0000id', 'a']);
    await connection.script('sessionCommit', key, 10_000, '0', 0, 1, 1_000_000, '', 1, 'a');
    expect(await other.exists(key)).toBe(0);
  });

  it("sessionCommit under session.lock applies only while the lock holds the request's token (status 6 otherwise); lockRenew extends only its own lock", async () => {
    const key = redisKeys.sessionData('plain', 'locked');
    const lock = redisKeys.sessionLock('plain', 'locked');
    const commit = async (token: string, value: string) =>
      parseCommitReply(
        await connection.script('sessionCommit', key, 10_000, 'e', 0, 1000, 1_000_000, token, 0, 'v', value),
      ).status;
    await other.hset(key, 'v', 'first');
    await other.set(lock, 'mine', 'PX', 10_000);
    expect(await commit('mine', 'a')).toBe(1);
    expect(await other.hget(key, 'v')).toBe('a');
    await other.call('CONFIG', 'RESETSTAT');
    expect(await commit('mine', 'b')).toBe(1);
    expect(await commandCalls()).toEqual({ evalsha: 1, time: 1, get: 1, hstrlen: 1, hset: 1, pexpire: 1 });
    // Taken by another request after this one's expired; then expired or released: nothing applies.
    await other.set(lock, 'theirs', 'PX', 10_000);
    expect(await commit('mine', 'c')).toBe(6);
    await other.del(lock);
    expect(await commit('mine', 'c')).toBe(6);
    expect(await other.hget(key, 'v')).toBe('b');

    expect(await connection.script('lockRenew', lock, 'mine', 5_000)).toBe(0); // a free lock is not taken
    expect(await other.exists(lock)).toBe(0);
    await other.set(lock, 'theirs', 'PX', 1_000);
    expect(await connection.script('lockRenew', lock, 'mine', 5_000)).toBe(0);
    expect(await other.pttl(lock)).toBeLessThanOrEqual(1_000);
    expect(await connection.script('lockRenew', lock, 'theirs', 5_000)).toBe(1);
    expect(await other.pttl(lock)).toBeGreaterThan(4_000);
    expect(await other.get(lock)).toBe('theirs');
  });

  it("sessionTake and sessionEnd under session.lock answer 0, taking, deleting and marking nothing, unless the lock holds the request's token", async () => {
    const keys = (name: string) => ({
      data: redisKeys.sessionData('plain', name),
      lock: redisKeys.sessionLock('plain', name),
      ended: redisKeys.sessionEnded('plain', name),
    });
    const moved = keys('take-locked');
    const ended = keys('end-locked');
    const take = (token: string) => connection.script('sessionTake', moved.data, 60_000, token);
    const end = (token: string) => connection.script('sessionEnd', ended.data, 60_000, token);
    for (const { data } of [moved, ended]) await other.hset(data, 'v', 'theirs');
    // The lock expired (its key is gone), then another request took it.
    expect(await take('stale')).toBe(0);
    expect(await end('stale')).toBe(0);
    for (const { lock } of [moved, ended]) await other.set(lock, 'live', 'PX', 10_000);
    await other.call('CONFIG', 'RESETSTAT');
    expect(await take('stale')).toBe(0);
    expect(await commandCalls()).toEqual({ evalsha: 1, get: 1 }); // the lock read, and nothing else
    expect(await end('stale')).toBe(0);
    for (const { data, ended: mark } of [moved, ended]) {
      expect(await other.hgetall(data)).toEqual({ v: 'theirs' });
      expect(await other.exists(mark)).toBe(0);
    }
    // The holder's token: taken and ended as without a lock, marks left.
    expect(parseLoadReply((await take('live')) as Buffer)).toEqual(new Map([['v', Buffer.from('theirs')]]));
    expect(await end('live')).toBe(1);
    expect(await other.exists(moved.data, ended.data)).toBe(0);
    expect(await other.get(moved.ended)).toBe('m');
    expect(await other.get(ended.ended)).toBe('a');
    // '' (no session.lock): no lock read; sessionEnd with no keep time leaves no mark.
    await other.hset(ended.data, 'v', 'again');
    await other.del(ended.ended);
    await other.call('CONFIG', 'RESETSTAT');
    expect(await connection.script('sessionEnd', ended.data, 0, '')).toBe(1);
    expect(await commandCalls()).toEqual({ evalsha: 1, del: 1 });
    expect(await other.exists(ended.data, ended.ended)).toBe(0);
  });

  it('lockAcquire past its deadline (a try the request stopped waiting for, delivered late) takes nothing (minus the time); in time, or without one, it takes and is reentrant', async () => {
    const lock = redisKeys.sessionLock('plain', 'take-lock-late');
    const [seconds, micros] = (await other.time()) as [number, number];
    const past = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1;
    const late = Number(await connection.script('lockAcquire', lock, 'mine', 30_000, past));
    expect(-late).toBeGreaterThan(past); // minus Redis's time: the app's estimate of its clock is corrected
    expect(-late).toBeLessThan(past + 10_000);
    expect(await other.exists(lock)).toBe(0); // before: taken for the whole ttl, released by nobody
    expect(await connection.script('lockAcquire', lock, 'mine', 30_000, past + 60_000)).toBe(1);
    expect(await connection.script('lockAcquire', lock, 'mine', 30_000, 0)).toBe(1); // reentrant, no deadline
    expect(await connection.script('lockAcquire', lock, 'theirs', 30_000, past + 60_000)).toBe(0);
    expect(await other.get(lock)).toBe('mine');
  });

  it('sessionTake and sessionEnd past their deadline (the app answered 503) take, delete and mark nothing (-1)', async () => {
    const moved = redisKeys.sessionData('plain', 'take-late');
    const ended = redisKeys.sessionData('plain', 'end-late');
    for (const data of [moved, ended]) await other.hset(data, 'v', 'kept');
    const [seconds, micros] = (await other.time()) as [number, number];
    const past = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1;
    expect(await connection.script('sessionTake', moved, 60_000, '', past)).toBe(-1);
    expect(await connection.script('sessionEnd', ended, 60_000, '', past)).toBe(-1);
    for (const data of [moved, ended]) expect(await other.hgetall(data)).toEqual({ v: 'kept' });
    expect(
      await other.exists(
        redisKeys.sessionEnded('plain', 'take-late'),
        redisKeys.sessionEnded('plain', 'end-late'),
      ),
    ).toBe(0);
    // In time: as without a deadline.
    const future = past + 60_000;
    expect(
      parseLoadReply((await connection.script('sessionTake', moved, 60_000, '', future)) as Buffer),
    ).toEqual(new Map([['v', Buffer.from('kept')]]));
    expect(await connection.script('sessionEnd', ended, 60_000, '', future)).toBe(1);
    expect(await other.exists(moved, ended)).toBe(0);
  });

  it('sessionCommit: refusals apply nothing: past the deadline (0, now), over maxKeys (2, keys), over maxSessionBytes (3, bytes)', async () => {
    const commit = async (...args: (string | number)[]) =>
      parseCommitReply(await connection.script('sessionCommit', ...args));
    const key = redisKeys.sessionData('plain', 'refused');
    await other.hset(key, 'a', '12345');
    const [sec, usec] = await other.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const late = await commit(key, 10_000, '0', now - 1, 9, 9999, '', 0, 'a', 'late');
    expect(late.status).toBe(0);
    expect(late.detail).toBeGreaterThanOrEqual(now);
    expect(await commit(key, 10_000, '0', now + 60_000, 1, 9999, '', 0, 'b', '1')).toEqual({
      status: 2,
      detail: 2,
    });
    expect(await commit(key, 10_000, '0', 0, 9, 7, '', 0, 'a', '1234567')).toEqual({
      status: 3,
      detail: 8,
    });
    expect(await other.hgetall(key)).toEqual({ a: '12345' });
    // Shrinking while over a limit is applied: 'a' = 6 bytes stored under a limit of 3.
    const shrunk = await commit(key, 10_000, '0', 0, 9, 3, '', 0, 'a', '12');
    expect(shrunk.status).toBe(1);
    expect(shrunk.detail).toBeGreaterThanOrEqual(now);
    expect(await other.hgetall(key)).toEqual({ a: '12' });
  });

  it('a full Redis (maxmemory, noeviction): a commit that removes a value and sets another, and a clear that sets, answer OOM and apply nothing', async () => {
    const key = redisKeys.sessionData('full', 'commit');
    await other.hset(key, 'a', '1', 'b', '2');
    await other.config('SET', 'maxmemory-policy', 'noeviction');
    await other.config('SET', 'maxmemory', '1');
    try {
      const big = 'x'.repeat(100_000);
      const commit = (mode: string, removed: string[], ...set: string[]) =>
        connection.script(
          'sessionCommit',
          key,
          10_000,
          mode,
          0,
          1000,
          1_000_000,
          '',
          removed.length,
          ...removed,
          ...set,
        );
      await expect(commit('0', ['a'], 'c', big)).rejects.toThrow(/^OOM command not allowed/); // HDEL, then HSET
      await expect(commit('1', [], 'c', big)).rejects.toThrow(/^OOM command not allowed/); // a clear: DEL, then HSET
      // A removal alone frees memory: allowed.
      await commit('0', ['a']);
    } finally {
      await other.config('SET', 'maxmemory', '0');
    }
    expect(await other.hgetall(key)).toEqual({ b: '2' });
  });
});

/**
 * Load replies are packed for small sessions and HGETALL's array otherwise (redis-session.replies.ts):
 * both shapes, read back exactly, through the library's own encoding and through ioredis' defined
 * commands (an app's client with `keyPrefix` and `stringNumbers`).
 */
describe('session load replies on a real Redis (packed and array shapes)', () => {
  let server: RedisServerProcess;
  let own: RedisConnection;
  let apps: RedisConnection;
  let appClient: Redis;
  let other: Redis;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    own = new RedisConnection(resolveRedisCacheOptions({ host: server.host, port: server.port }));
    await own.connect();
    appClient = new Redis({ host: server.host, port: server.port, keyPrefix: 'p:', stringNumbers: true });
    apps = new RedisConnection(resolveRedisCacheOptions({ client: appClient }));
    await apps.connect();
    other = new Redis({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    other.disconnect();
    await apps.close();
    appClient.disconnect();
    await own.close();
    await server.stop();
  });

  const small: [string, Buffer][] = [
    ['count', Buffer.from([0, 13, 10, 255])],
    ['empty', Buffer.alloc(0)],
    ['naïve ☃', Buffer.from('é\r\n$5\r\n')],
    ['\u0000id', Buffer.from('the-id')],
  ];
  const manyFields: [string, Buffer][] = Array.from({ length: PACK_MAX_FIELDS + 1 }, (_, i) => [
    `f${i}`,
    Buffer.from([i, 0, 255]),
  ]);
  const largeValue: [string, Buffer][] = [
    ['big', Buffer.alloc(70_000, 7)], // more than one socket read, and past PACK_MAX_BYTES
    ['small', Buffer.from('x')],
  ];
  // Sorted by name: a large hash (hashtable encoding) answers its fields in no particular order.
  const byName = (a: string[], b: string[]) => (a[0] < b[0] ? -1 : 1);
  const plain = (data: Map<string, Uint8Array> | undefined) =>
    [...(data ?? [])].map(([name, value]) => [name, Buffer.from(value).toString('hex')]).sort(byName);
  const expected = (fields: [string, Buffer][]) =>
    fields.map(([name, value]) => [name, value.toString('hex')]).sort(byName);
  it.each([
    ['a small session (packed)', small, 'packed'],
    [`more than ${PACK_MAX_FIELDS} fields (array)`, manyFields, 'array'],
    [`more than ${PACK_MAX_BYTES} bytes (array)`, largeValue, 'array'],
  ] as const)(
    '%s: every name and value read back exactly, on both loads and both clients',
    async (_name, fields, shape) => {
      for (const [connection, prefix] of [
        [own, ''],
        [apps, 'p:'],
      ] as const) {
        const key = redisKeys.sessionData('replies', `${shape}-${fields.length}`);
        await other.del(prefix + key);
        await other.hset(prefix + key, ...fields.flat());
        const load = (await connection.script('sessionLoad', key, 10_000)) as Buffer | Buffer[];
        expect(Array.isArray(load)).toBe(shape === 'array');
        expect(plain(parseLoadReply(load))).toEqual(expected(fields));
        const tracked = parseTrackedLoadReply(
          (await connection.script('sessionLoadTracked', key, 10_000, 0)) as Buffer | (Buffer | number)[],
        );
        expect(plain(tracked?.data)).toEqual(expected(fields));
        expect(tracked?.timeLeftMs).toBe(10_000);
      }
    },
  );

  it("a commit's one-integer reply on an app's client with stringNumbers and keyPrefix", async () => {
    const key = redisKeys.sessionData('replies', 'commit');
    const reply = await apps.script('sessionCommit', key, 10_000, '0', 0, 9, 9999, '', 0, 'a', '1');
    expect(typeof reply).toBe('string');
    expect(parseCommitReply(reply).status).toBe(1);
    expect(await other.hgetall(`p:${key}`)).toEqual({ a: '1' });
  });
});
