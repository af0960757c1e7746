import { Redis } from 'ioredis';
import { redisKeys, type SessionChanges } from 'nest-session-state';
import {
  RedisConnection,
  RedisDistributedCache,
  RedisSessionStore,
  resolveRedisCacheOptions,
} from 'nest-session-state/redis';
import { commandStats, diffStats, RedisServerProcess } from '../support/redis/index.js';

/**
 * On a standalone client the library writes the RESP of its scripts itself (EncodedCommand) instead
 * of going through ioredis' defined commands. Checked on a real Redis: the SHA is the one Redis
 * knows (no EVAL fallback in normal operation), binary values and UTF-8 names arrive intact, a
 * flushed script cache recovers, and a client with `keyPrefix` keeps its prefix (ioredis' path).
 */
describe('session scripts written by the library (standalone Redis)', () => {
  const IDLE = 1_200_000;
  let server: RedisServerProcess;
  let admin: Redis;
  let connection: RedisConnection;
  let store: RedisSessionStore;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    admin = new Redis({ host: server.host, port: server.port });
    connection = new RedisConnection(resolveRedisCacheOptions({ host: server.host, port: server.port }));
    await connection.connect();
    store = new RedisSessionStore(connection);
  });
  afterAll(async () => {
    await connection.close();
    admin.disconnect();
    await server.stop();
  });

  function changes(set: Record<string, Uint8Array>, removed: string[] = []): SessionChanges {
    const values = new Map(Object.entries(set));
    return { cleared: false, set: values, removed: new Set(removed), snapshot: () => new Map(values) };
  }

  const userFields = (data: Map<string, Uint8Array> | undefined) =>
    Object.fromEntries(
      [...(data ?? [])].filter(([name]) => !name.startsWith('\u0000')).map(([n, v]) => [n, [...v]]),
    );

  it('runs every load and commit as EVALSHA of the SHA Redis loaded: no EVAL fallback', async () => {
    const before = await commandStats(admin);
    for (let i = 0; i < 5; i++) {
      await store.commit(`plain-${i}`, changes({ count: Uint8Array.of(0, 0, 0, i) }), IDLE);
      expect(userFields(await store.load(`plain-${i}`, IDLE))).toEqual({ count: [0, 0, 0, i] });
    }
    const calls = diffStats(before, await commandStats(admin));
    expect(calls.evalsha).toBe(10);
    expect(calls.eval).toBeUndefined();
  });

  it('stores binary values (every byte, CR LF inside) and UTF-8 names and keys byte for byte', async () => {
    const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
    const sessionKey = 'cl\u00e9-\u20ac-\u{1f600}';
    await store.commit(
      sessionKey,
      changes({
        'caf\u00e9 \u2615': everyByte,
        '\r\n$3\r\n': Uint8Array.of(13, 10),
        empty: new Uint8Array(0),
      }),
      IDLE,
    );
    expect(userFields(await store.load(sessionKey, IDLE))).toEqual({
      'caf\u00e9 \u2615': [...everyByte],
      '\r\n$3\r\n': [13, 10],
      empty: [],
    });
    const key = redisKeys.sessionData(connection.options.applicationName, sessionKey);
    expect([...((await admin.hgetBuffer(key, 'caf\u00e9 \u2615')) ?? [])]).toEqual([...everyByte]);
  });

  it('removes fields named in the commit', async () => {
    await store.commit('removal', changes({ a: Uint8Array.of(1), b: Uint8Array.of(2) }), IDLE);
    await store.commit('removal', changes({ c: Uint8Array.of(3) }, ['a']), IDLE);
    expect(userFields(await store.load('removal', IDLE))).toEqual({ b: [2], c: [3] });
  });

  it('recovers from a flushed script cache: EVAL once per script, then EVALSHA again', async () => {
    await store.commit('flush', changes({ n: Uint8Array.of(1) }), IDLE);
    await admin.script('FLUSH');
    let before = await commandStats(admin);
    await store.commit('flush', changes({ n: Uint8Array.of(2) }), IDLE);
    expect(userFields(await store.load('flush', IDLE))).toEqual({ n: [2] });
    expect(diffStats(before, await commandStats(admin)).eval).toBe(2); // the commit and the load script
    before = await commandStats(admin);
    await store.commit('flush', changes({ n: Uint8Array.of(3) }), IDLE);
    expect(userFields(await store.load('flush', IDLE))).toEqual({ n: [3] });
    const calls = diffStats(before, await commandStats(admin));
    expect(calls.evalsha).toBe(2);
    expect(calls.eval).toBeUndefined();
  });

  it('passes errors other than NOSCRIPT through (a session key holding a string: WRONGTYPE)', async () => {
    const key = redisKeys.sessionData(connection.options.applicationName, 'wrong-type');
    await admin.set(key, 'not a hash');
    await expect(connection.script('sessionLoad', key, IDLE)).rejects.toThrow(/WRONGTYPE/);
    const before = await commandStats(admin);
    await expect(connection.script('sessionLoad', key, IDLE)).rejects.toThrow(/WRONGTYPE/);
    expect(diffStats(before, await commandStats(admin)).eval).toBeUndefined(); // no fallback for it
  });

  it('leaves a client with auto-pipelining to ioredis: scripts keep their order with its other commands', async () => {
    const pipelined = new Redis({ host: server.host, port: server.port, enableAutoPipelining: true });
    const withPipelining = new RedisConnection(resolveRedisCacheOptions({ client: pipelined }));
    await withPipelining.connect();
    try {
      const cache = new RedisDistributedCache(withPipelining);
      await cache.set('ordered', Uint8Array.of(1));
      // DEL (a plain command, auto-pipelined: written on the next tick) then the SET script: an
      // encoded script written at once would reach Redis first, and the DEL would remove its value.
      await Promise.all([cache.remove('ordered'), cache.set('ordered', Uint8Array.of(2))]);
      expect([...((await cache.get('ordered')) ?? [])]).toEqual([2]);
    } finally {
      await withPipelining.close();
      pipelined.disconnect();
    }
  });

  it('leaves a client with keyPrefix to ioredis, which prefixes the session key', async () => {
    const prefixed = new Redis({ host: server.host, port: server.port, keyPrefix: 'tenant-a:' });
    const withPrefix = new RedisConnection(resolveRedisCacheOptions({ client: prefixed }));
    await withPrefix.connect();
    try {
      const prefixedStore = new RedisSessionStore(withPrefix);
      await prefixedStore.commit('p', changes({ x: Uint8Array.of(9) }), IDLE);
      const key = redisKeys.sessionData(withPrefix.options.applicationName, 'p');
      expect(await admin.exists(`tenant-a:${key}`)).toBe(1);
      expect(await admin.exists(key)).toBe(0);
      expect(userFields(await prefixedStore.load('p', IDLE))).toEqual({ x: [9] });
    } finally {
      await withPrefix.close();
      prefixed.disconnect();
    }
  });
});
