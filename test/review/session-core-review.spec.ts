/**
 * Review findings on the session core (memory store and custom stores). Each test describes the
 * behaviour DESIGN.md asks for; a failing test here is a bug in the library, not in the test.
 */
import {
  BadRequestException,
  Catch,
  Controller,
  Get,
  HttpCode,
  Post,
  Res,
  UseFilters,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { Response } from 'express';
import request from 'supertest';
import {
  ManualClock,
  MemorySessionStore,
  Session,
  TempDataAccessor,
  type SessionStore,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CookieJar, cookiePair, setCookies } from '../support/cookie-jar.js';
import { redirectTo } from '../support/platform/test-platform.js';

const COOKIE = '.Nest.Session';

/** A flash-message filter: sets TempData and redirects back (a common MVC pattern). */
@Catch(BadRequestException)
class FlashErrorFilter implements ExceptionFilter {
  constructor(private readonly tempData: TempDataAccessor) {}
  catch(error: BadRequestException, host: ArgumentsHost) {
    this.tempData.current.set('Message', `failed: ${error.message}`);
    redirectTo(host.switchToHttp().getResponse(), '/temp');
  }
}

/** What a late write (after the response ended) did: recorded for the test to inspect. */
const late: { error?: string; done?: Promise<void> } = {};

@Controller('review')
class ReviewController {
  @Post('commit-then-abandon')
  @HttpCode(200)
  async commitThenAbandon(@Session() session: Session) {
    session.setString('name', 'should be gone');
    await session.commit();
    session.abandon();
    return { ok: true };
  }

  @Post('commit-then-regenerate')
  @HttpCode(200)
  async commitThenRegenerate(@Session() session: Session) {
    session.setString('name', 'x');
    await session.commit();
    session.regenerate();
    return { ok: true };
  }

  @Post('late-set')
  lateSet(@Session() session: Session, @Res() res: Response) {
    late.error = undefined;
    late.done = new Promise<void>((resolve) => {
      res.once('finish', () => {
        try {
          session.setString('late', 'value');
        } catch (error) {
          late.error = (error as Error).name;
        }
        resolve();
      });
    });
    res.send('sent');
  }

  @Post('stream-regenerate')
  streamRegenerate(@Session() session: Session, @Res() res: Response) {
    res.write('started;');
    try {
      session.regenerate();
      res.end('regenerated');
    } catch (error) {
      res.end((error as Error).name);
    }
  }

  @Post('write-during-commit')
  @HttpCode(200)
  async writeDuringCommit(@Session() session: Session) {
    session.setString('a', '1');
    const committing = session.commit();
    await new Promise((r) => setTimeout(r, 30)); // the store is still writing 'a'
    session.setString('b', '2');
    await committing;
    return { ok: true };
  }

  @Post('flash-error')
  @UseFilters(FlashErrorFilter)
  flashError() {
    throw new BadRequestException('bad form');
  }

  @Get('mutate-bytes')
  mutateBytes(@Session() session: Session) {
    const bytes = session.getBytes('count');
    if (bytes) bytes[3] = 99; // a read, then a local change: never set() back
    return { ok: true };
  }
}

async function withApp(
  options: Parameters<typeof startSessionApp>[0],
  run: (url: string) => Promise<void>,
): Promise<void> {
  const { app, url } = await startSessionApp(options, { controllers: [ReviewController] });
  try {
    await run(url);
  } finally {
    await app.close();
  }
}

describe('review: regenerate / abandon / commit sequences', () => {
  it('abandon() after an explicit commit() of a new session leaves no usable session behind', async () => {
    await withApp({}, async (url) => {
      const jar = new CookieJar();
      const res = await request(url).post('/review/commit-then-abandon').expect(200);
      jar.update(res);
      // Either no cookie survives in the browser, or the one that does holds no data.
      if (jar.get(COOKIE) !== undefined) {
        const read = await request(url).get('/read').set('Cookie', jar.header()).expect(200);
        expect(read.body.name).toBeNull();
      }
    });
  });

  it('a response carries at most one Set-Cookie for the session cookie', async () => {
    await withApp({}, async (url) => {
      const res = await request(url).post('/review/commit-then-regenerate').expect(200);
      expect(setCookies(res).filter((c) => c.startsWith(`${COOKIE}=`))).toHaveLength(1);
    });
  });

  it('regenerate() whose delete of the old key fails must not leave the old (fixated) key usable', async () => {
    class FlakyRemoveStore extends MemorySessionStore {
      override readonly throwOnError = false as true; // the Redis default when throwOnError: false
      failRemove = false;
      override remove(key: string): Promise<void> {
        if (this.failRemove) return Promise.reject(new Error('remove failed'));
        return super.remove(key);
      }
    }
    const store = new FlakyRemoveStore();
    await withApp({ store }, async (url) => {
      const old = cookiePair(await request(url).get('/counter').expect(200), COOKIE);
      store.failRemove = true;
      const res = await request(url).post('/regenerate').set('Cookie', old);
      store.failRemove = false;
      const next = setCookies(res).find((c) => c.startsWith(`${COOKIE}=`));
      if (res.status === 200 && next !== undefined) {
        // the login "succeeded" and the browser moved to the new key: the old key must be worthless
        const read = await request(url).get('/read').set('Cookie', old).expect(200);
        expect(read.body.count).toBeNull();
      }
    });
  });

  it('regenerate() after the response started either throws or keeps the session reachable', async () => {
    await withApp({}, async (url) => {
      const jar = new CookieJar();
      jar.update(await request(url).get('/counter').expect(200));
      const res = await request(url).post('/review/stream-regenerate').set('Cookie', jar.header());
      jar.update(res);
      if (res.text === 'started;regenerated') {
        await request(url).get('/counter').set('Cookie', jar.header()).expect(200, { count: 2 });
      }
    });
  });
});

describe('review: writes while a commit is in flight', () => {
  it('a value set while a commit is being written is committed at the end of the request', async () => {
    // Like RedisSessionStore: the changes are serialised when commit() is called, written later.
    class SlowStore extends MemorySessionStore {
      override commit(key: string, changes: Parameters<SessionStore['commit']>[1], idle: number) {
        const frozen = {
          cleared: changes.cleared,
          set: new Map(changes.set),
          removed: new Set(changes.removed),
          snapshot: () => changes.snapshot(),
        };
        return new Promise<void>((resolve) =>
          setTimeout(() => resolve(super.commit(key, frozen, idle)), 100),
        );
      }
    }
    await withApp({ store: new SlowStore() }, async (url) => {
      const cookie = cookiePair(await request(url).post('/set/seed').expect(200), COOKIE);
      await request(url).post('/review/write-during-commit').set('Cookie', cookie).expect(200);
      const { body } = await request(url).get('/keys').set('Cookie', cookie).expect(200);
      expect(body).toEqual({ seed: 'seed', a: '1', b: '2' });
    });
  });
});

describe('review: state written by exception filters', () => {
  it('TempData set in an exception filter (after the interceptor finalized) reaches the next request', async () => {
    await withApp({}, async (url) => {
      const jar = new CookieJar();
      jar.update(await request(url).post('/review/flash-error').expect(302));
      const { body } = await request(url).get('/temp').set('Cookie', jar.header()).expect(200);
      expect(body.message).toBe('failed: bad form');
    });
  });
});

describe('review: writes after the response', () => {
  it('a set on an established session after the response ended is a clear error (DESIGN error table), not silently lost', async () => {
    await withApp({}, async (url) => {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      await request(url).post('/review/late-set').set('Cookie', cookie).expect(201);
      await late.done;
      if (late.error === undefined) {
        const { body } = await request(url).get('/keys').set('Cookie', cookie).expect(200);
        expect(body.late).toBe('value');
      } else {
        expect(late.error).toBe('SessionResponseStartedError');
      }
    });
  });
});

describe('review: store failures bound by ioTimeout', () => {
  const hangingCommit = (throwOnError: boolean): SessionStore => ({
    writesDeltas: true,
    throwOnError,
    load: () => Promise.resolve(undefined),
    commit: () => new Promise(() => undefined),
    refresh: () => Promise.resolve(),
    remove: () => Promise.resolve(),
  });

  it.each([false, true])(
    'a hanging commit costs one ioTimeout, not one per finalize (throwOnError %s)',
    async (throwOnError) => {
      await withApp({ store: hangingCommit(throwOnError), session: { ioTimeout: 1_000 } }, async (url) => {
        const started = Date.now();
        await request(url)
          .get('/counter')
          .expect(throwOnError ? 503 : 200);
        // 2 x ioTimeout = 2000 when it commits twice; 800 ms of slack for a loaded machine.
        expect(Date.now() - started).toBeLessThan(1_800);
      });
    },
  );

  it('a lock release that never answers does not hold the response forever', async () => {
    const memory = new MemorySessionStore();
    const store: SessionStore = {
      writesDeltas: true,
      throwOnError: true,
      load: (k, t) => memory.load(k, t),
      commit: (k, c, t) => memory.commit(k, c, t),
      refresh: (k, t) => memory.refresh(k, t),
      remove: (k) => memory.remove(k),
      tryLock: () => Promise.resolve(true),
      unlock: () => new Promise(() => undefined),
    };
    await withApp({ store, session: { ioTimeout: 300, lock: true } }, async (url) => {
      const cookie = cookiePair(await request(url).post('/set/seed').expect(200), COOKIE);
      const started = Date.now();
      const res = await request(url)
        .get('/counter')
        .set('Cookie', cookie)
        .timeout(3000)
        .then(
          (r) => r.status,
          (error: Error) => error.message,
        );
      expect(res).toBe(200);
      expect(Date.now() - started).toBeLessThan(1500);
    });
  });
});

describe('review: idle timeout slides on every request', () => {
  it('a request that only touches TempData (cookie provider) still slides the session', async () => {
    const clock = new ManualClock(Date.now());
    await withApp({ memory: { clock } }, async (url) => {
      const cookie = cookiePair(await request(url).get('/counter').expect(200), COOKIE);
      clock.advance(15 * 60_000);
      await request(url).get('/temp').set('Cookie', cookie).expect(200, { message: null });
      await new Promise((r) => setTimeout(r, 20));
      clock.advance(15 * 60_000);
      await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
    });
  });
});

describe('review: empty sessions and stored bytes', () => {
  it('reading session.id on a session with no values stores nothing (empty sessions are not retained)', async () => {
    const store = new MemorySessionStore();
    await withApp({ store }, async (url) => {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      await request(url).post('/clear').set('Cookie', cookie).expect(200);
      expect(store.count).toBe(0);
      await request(url).get('/id').set('Cookie', cookie).expect(200);
      expect(store.count).toBe(0);
    });
  });

  it('mutating the bytes returned by getBytes() does not change the stored session without a set', async () => {
    await withApp({}, async (url) => {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      await request(url).get('/review/mutate-bytes').set('Cookie', cookie).expect(200);
      const { body } = await request(url).get('/read').set('Cookie', cookie).expect(200);
      expect(body.count).toBe(1);
    });
  });
});
