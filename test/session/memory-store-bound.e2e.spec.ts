import { Agent, request as httpRequest } from 'node:http';
import request from 'supertest';
import {
  DistributedCache,
  MemoryDistributedCache,
  MemorySessionStore,
  SessionConfigurationError,
  SessionStore,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair } from '../support/cookie-jar.js';

const COOKIE = '.Nest.Session';
const SECRET = 'Vb5nQw8rTz1xLk4mPc7dHs2gJf9aEy3uNo6iRt0W2Z';
const MAX = 20;

/** One request on `agent` (a kept-alive connection): its status and the session cookie it set. */
function send(agent: Agent, url: string, method = 'GET', cookie?: string) {
  return new Promise<{ status: number; cookie?: string }>((resolve, reject) => {
    const req = httpRequest(url, { agent, method, headers: cookie ? { cookie } : {} }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, cookie: res.headers['set-cookie']?.[0]?.split(';')[0] }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the default memory store under a flood of new visitors', () => {
  it('keeps the number of sessions at memory.maxSessions, evicting the least recently used, and logs it once', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp(
      { secrets: [SECRET], memory: { maxSessions: MAX } },
      { logger },
    );
    try {
      const store = app.get<MemorySessionStore>(SessionStore);
      expect(store).toBeInstanceOf(MemorySessionStore);
      const regular = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const idle = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      let regularCount = 1;

      // 10x the bound of cookieless visitors, each of which stores a value; the regular comes back often.
      for (let i = 0; i < 10 * MAX; i++) {
        await request(url).get('/counter').expect(200, { count: 1 });
        if (i % 5 === 4) {
          regularCount++;
          await request(url).get('/counter').set('Cookie', regular).expect(200, { count: regularCount });
        }
        expect(store.count).toBeLessThanOrEqual(MAX);
      }
      expect(store.count).toBe(MAX);
      // The idle visitor was the least recently used: evicted (a new, empty session), the regular kept.
      await request(url).get('/read').set('Cookie', idle).expect(200).expect({
        available: true,
        keys: [],
        count: null,
        name: null,
      });
      await request(url)
        .get('/read')
        .set('Cookie', regular)
        .expect(200)
        .expect((res) => expect(res.body.count).toBe(regularCount));

      const warnings = logger.lines.filter(
        (l) => l.level === 'warn' && /memory\.maxSessions/.test(l.message),
      );
      expect(warnings).toHaveLength(1);
      expect(warnings[0].message).toMatch(
        /Memory session store is full \(memory\.maxSessions: 20 sessions\)/,
      );
      expect(warnings[0].message).toMatch(/Raise memory\.maxSessions/);
    } finally {
      await app.close();
    }
  });

  it('bounds the injectable DistributedCache beside it at memory.cacheSizeLimit, evicting the least recently used', async () => {
    const { app } = await startSessionApp({ secrets: [SECRET], memory: { cacheSizeLimit: 1000 } });
    try {
      const cache = app.get<DistributedCache>(DistributedCache);
      expect(cache).toBeInstanceOf(MemoryDistributedCache);
      for (const key of ['a', 'b', 'c']) await cache.set(key, new Uint8Array(400));
      // 1,200 bytes of values over a bound of 1,000: the oldest went, the newer two stay.
      expect(await cache.get('a')).toBeUndefined();
      expect((await cache.get('b'))?.byteLength).toBe(400);
      expect((await cache.get('c'))?.byteLength).toBe(400);
    } finally {
      await app.close();
    }
  });

  it.each([
    [
      'the module option',
      () => ({ memory: { sizeLimit: 200_000 } }),
      /SessionModule option memory\.sizeLimit/,
    ],
    [
      'a MemorySessionStore given as store',
      () => ({ store: new MemorySessionStore({ sizeLimit: 200_000 }) }),
      /The sizeLimit of the MemorySessionStore given as store .*Raise its sizeLimit/,
    ],
    [
      'a MemorySessionStore given as store beside a cache',
      () => ({ store: new MemorySessionStore({ sizeLimit: 200_000 }), cache: new MemoryDistributedCache() }),
      /The sizeLimit of the MemorySessionStore given as store/,
    ],
  ])(
    'refuses at startup a memory store that cannot hold one session the session limits allow (%s)',
    async (_name, options, option) => {
      const failure = startSessionApp({ secrets: [SECRET], ...options() });
      await expect(failure).rejects.toThrow(SessionConfigurationError);
      await expect(failure).rejects.toThrow(option);
      await expect(failure).rejects.toThrow(
        /\(200000 bytes for all sessions together\) is below what one session may grow to: 2145712 bytes .*to at least 2145712, or lower session\.maxSessionBytes/,
      );
    },
  );

  it('starts whatever session.maxKeys is when the bytes fit: no more fields than session.maxSessionBytes', async () => {
    // 512 + 2 x 1 MiB + 48 x 1 MiB fields at most, about 52 MB, within the default 128 MiB.
    const { app } = await startSessionApp({ secrets: [SECRET], session: { maxKeys: 3_000_000 } });
    await app.close();
  });

  it('a session grown to the session limits beside many small ones: every acknowledged write kept, nothing else evicted', async () => {
    // 512 + 2 x 50,000 + 48 x 101 = 105,360 bytes at most for one session: fits 200,000 with room for the others.
    const { app, url } = await startSessionApp({
      secrets: [SECRET],
      memory: { sizeLimit: 200_000 },
      session: { maxSessionBytes: 50_000, maxKeys: 100 },
    });
    try {
      const small: string[] = [];
      for (let i = 0; i < 30; i++)
        small.push(cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE));
      let big = '';
      const written: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await request(url)
          .post(`/set/v${i}`)
          .set('Cookie', big)
          .send({ value: 'x'.repeat(4000) });
        if (i === 0) big = cookiePair(res, COOKIE);
        if (res.status === 200) written.push(`v${i}`);
        else expect(res.status).toBe(413); // over session.maxSessionBytes: refused, not saved
      }
      expect(written.length).toBe(12); // 12 x ~4 KB under 50,000
      const keys = (await request(url).get('/keys').set('Cookie', big).expect(200)).body as Record<
        string,
        string
      >;
      expect(Object.keys(keys).sort()).toEqual([...written].sort());
      for (const cookie of small) {
        await request(url)
          .get('/read')
          .set('Cookie', cookie)
          .expect(200)
          .expect((res) => expect(res.body.count).toBe(1));
      }
    } finally {
      await app.close();
    }
  });

  it('with memory.maxSessions: Infinity and session.lock, the released locks of sessions gone do not pile up', async () => {
    // Every session takes its lock once (the abandon's load) and leaves: the store ends empty. A released lock is
    // remembered (a late commit of a holder whose lock expired is refused), but only within a bound: unbounded
    // sessions must not make the lock table grow with every session the process ever saw.
    const { app, url } = await startSessionApp({
      secrets: [SECRET],
      memory: { maxSessions: Infinity },
      session: { lock: true },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const store = app.get<MemorySessionStore>(SessionStore);
      const sessions = 1500;
      for (let i = 0; i < sessions; i++) {
        const created = await send(agent, `${url}/counter`);
        expect(created.status).toBe(200);
        expect((await send(agent, `${url}/abandon`, 'POST', created.cookie)).status).toBe(200);
      }
      expect(store.count).toBe(0);
      const locks = (store as unknown as { locks: Map<string, unknown> }).locks;
      // Before, one entry per session ever locked (1500 here, and on for ever); now twice the sessions held, 1024 at least.
      expect(locks.size).toBeLessThanOrEqual(1024);
    } finally {
      agent.destroy();
      await app.close();
    }
  }, 120_000);

  it.each([
    ['maxSessions', { maxSessions: -1 }],
    ['sizeLimit', { sizeLimit: 1.5 }],
    ['cacheSizeLimit', { cacheSizeLimit: 0 }],
  ])(
    'the module refuses a memory.%s that is not a positive integer: a SessionConfigurationError naming the option',
    async (name, memory) => {
      const failure = startSessionApp({ secrets: [SECRET], memory });
      await expect(failure).rejects.toThrow(SessionConfigurationError);
      await expect(failure).rejects.toThrow(
        new RegExp(`memory\\.${name}\\)? must be a positive integer.*, or Infinity`),
      );
    },
  );
});

describe('a session store on a memory cache given as cache', () => {
  it('answers 413 (SessionLimitExceededError, limit sizeLimit) for a session larger than the whole cache, keeping it and the others', async () => {
    const { app, url } = await startSessionApp({
      secrets: [SECRET],
      cache: new MemoryDistributedCache({ sizeLimit: 50_000 }),
    });
    try {
      const other = cookiePair(await request(url).get('/counter').expect(200, { count: 1 }), COOKIE);
      const grows = cookiePair(
        await request(url)
          .post('/set/a')
          .send({ value: 'x'.repeat(30_000) })
          .expect(200),
        COOKIE,
      );
      const refused = await request(url)
        .post('/set/b')
        .set('Cookie', grows)
        .send({ value: 'y'.repeat(30_000) })
        .expect(413);
      expect(refused.body).toMatchObject({ code: 'SESSION_LIMIT_EXCEEDED' });
      expect(refused.body.message).toMatch(
        /more than the whole memory cache holds \(sizeLimit 50000 bytes\).*raise the cache's sizeLimit/,
      );
      const kept = (await request(url).get('/keys').set('Cookie', grows).expect(200)).body as Record<
        string,
        string
      >;
      expect(Object.keys(kept)).toEqual(['a']);
      await request(url).get('/counter').set('Cookie', other).expect(200, { count: 2 });
    } finally {
      await app.close();
    }
  });
});
