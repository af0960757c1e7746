/**
 * Sessions over an app's own DistributedCache (`cache`: CacheSessionStore), where the cache fails part of a
 * sign-in or sign-out, or instances' clocks disagree about the marks it holds. The commit semantics shared with the
 * other stores run in commit-semantics.e2e.spec.ts.
 */
import request from 'supertest';
import { Test } from '@nestjs/testing';
import { MemoryDistributedCache, SessionModule, SessionStore } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair, findSetCookie } from '../support/cookie-jar.js';

const COOKIE = '.Nest.Session';
const SECRETS = ['Wn5rTq8vLx2pYk7sMc0bJh3gFd9aEu4iOz6yRp1tQw'];
const MARK = 'nest-session-state:ended:';

/** A cache whose writes of ended marks fail while `failMarks` is set. */
class MarkFailingCache extends MemoryDistributedCache {
  failMarks = false;

  override set(...args: Parameters<MemoryDistributedCache['set']>): Promise<void> {
    if (this.failMarks && args[0].startsWith(MARK)) return Promise.reject(new Error('cache write refused'));
    return super.set(...args);
  }
}

async function withCacheApp(
  cache: MemoryDistributedCache,
  run: (url: string) => Promise<void>,
  logger?: CaptureLogger,
): Promise<void> {
  const { app, url } = await startSessionApp({ secrets: SECRETS, cache }, logger ? { logger } : undefined);
  try {
    await run(url);
  } finally {
    await app.close();
  }
}

describe('a session over your own DistributedCache', () => {
  it('a sign-out whose mark cannot be written still signs out (200, cookie deleted), logged as SessionEndMarkNotWritten', async () => {
    const cache = new MarkFailingCache();
    const logger = new CaptureLogger();
    await withCacheApp(
      cache,
      async (url) => {
        const cookie = cookiePair(await request(url).post('/set/user').expect(200), COOKIE);
        cache.failMarks = true;
        const out = await request(url).post('/abandon').set('Cookie', cookie).expect(200);
        expect(findSetCookie(out, COOKIE)).toMatch(/Expires=Thu, 01 Jan 1970/);
        expect((await request(url).get('/keys').set('Cookie', cookie).expect(200)).body).toEqual({});
      },
      logger,
    );
    expect(logger.lines.map((l) => l.message)).toContainEqual(
      expect.stringMatching(
        /^\[SessionEndMarkNotWritten\] The session was deleted, but its ended mark could not/,
      ),
    );
  });

  it('a sign-in whose mark cannot be written answers 503 and leaves the session where it was', async () => {
    const cache = new MarkFailingCache();
    await withCacheApp(cache, async (url) => {
      const cookie = cookiePair(await request(url).post('/set/cart').expect(200), COOKIE);
      cache.failMarks = true;
      const signIn = await request(url).post('/regenerate').set('Cookie', cookie).expect(503);
      expect(findSetCookie(signIn, COOKIE)).toBeUndefined();
      cache.failMarks = false;
      expect((await request(url).get('/keys').set('Cookie', cookie).expect(200)).body).toEqual({
        cart: 'cart',
      });
    });
  });

  it('a sign-in on an instance whose clock is a minute ahead: a request sent just after it with the old cookie answers 409', async () => {
    const cache = new MemoryDistributedCache();
    await withCacheApp(cache, async (url) => {
      const cookie = cookiePair(await request(url).post('/set/cart').expect(200), COOKIE);
      const realNow = Date.now;
      Date.now = () => realNow() + 60_000; // the signing-in instance's wall clock
      try {
        await request(url).post('/regenerate').set('Cookie', cookie).expect(200);
      } finally {
        Date.now = realNow;
      }
      // Read by an instance whose clock is right, the move is just made, not "a minute in the future" (unjudged).
      const late = await request(url).post('/set/late').set('Cookie', cookie);
      expect(late.status).toBe(409);
      expect(late.body).toMatchObject({ code: 'SESSION_MOVED' });
    });
  });

  it('overriding the SessionStore with one that takes no locks, under session.lock, fails at compile()', async () => {
    const lockless: SessionStore = {
      writesDeltas: true,
      throwOnError: true,
      load: () => Promise.resolve(undefined),
      commit: () => Promise.resolve(),
      refresh: () => Promise.resolve(),
      remove: () => Promise.resolve(),
    };
    const compiling = Test.createTestingModule({
      imports: [SessionModule.forRoot({ secrets: SECRETS, session: { lock: true } })],
    })
      .overrideProvider(SessionStore)
      .useValue(lockless)
      .compile();
    await expect(compiling).rejects.toThrow(
      /^The SessionStore provider \(overridden\) has no tryLock, and SessionModule option session\.lock needs a store/,
    );
  });
});
