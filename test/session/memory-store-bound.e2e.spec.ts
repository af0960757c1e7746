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
