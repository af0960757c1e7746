import { Controller, Get, Module, Req, type INestApplication } from '@nestjs/common';
import { AbstractHttpAdapter, HttpAdapterHost } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  Items,
  ItemsAccessor,
  Session,
  SessionAccessor,
  SessionModule,
  type RequestItems,
} from 'nest-session-state';
import { createPlatformApp, TEST_PLATFORM } from '../support/platform/test-platform.js';
import { cookiePair } from '../support/cookie-jar.js';

const COOKIE = '.Nest.Session';

/** What the app's own request hook left on the request. */
interface Marked {
  hookRan?: string;
  raw?: { hookRan?: string };
}

@Controller('hook')
class HookController {
  constructor(private readonly sessions: SessionAccessor) {}

  @Get('counter')
  counter(@Session() session: Session, @Req() req: Marked) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count, hookRan: req.hookRan ?? req.raw?.hookRan ?? null };
  }

  @Get('accessor')
  async accessor(@Items() items: RequestItems) {
    const session = await this.sessions.load();
    return { hookSaw: items.get('hook') ?? null, keys: session.keys };
  }
}

@Module({ imports: [SessionModule.forRoot()], controllers: [HookController] })
class HookAppModule {}

/** When main.ts sets its hook; `async`: an async hook, which on Fastify continues by resolving (no `done`). */
type When = 'before init' | 'after init' | 'async, after init';

/** An app whose main.ts sets a request hook of its own with Nest's adapter, before or after `init()`. */
async function start(when: When): Promise<{ app: INestApplication; url: string }> {
  const ref = await Test.createTestingModule({ imports: [HookAppModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  const setHook = () =>
    app
      .get(HttpAdapterHost<AbstractHttpAdapter>)
      .httpAdapter.setOnRequestHook(async (req: Marked, _res: unknown, done: () => void) => {
        if (when.startsWith('async')) await Promise.resolve();
        req.hookRan = when;
        if (req.raw) req.raw.hookRan = when;
        // The hook runs after the library's entry, in the request's context: the request items are there.
        app.get(ItemsAccessor).current.set('hook', when);
        // Express's adapter continues on done() only; Fastify's also when an async hook resolves.
        if (!when.startsWith('async') || TEST_PLATFORM === 'express') done();
      });
  if (when === 'before init') setHook();
  await app.init();
  if (when !== 'before init') setHook();
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

describe.each<When>(['before init', 'after init', 'async, after init'])(
  "the app's own setOnRequestHook, set %s",
  (when) => {
    let app: INestApplication;
    let url: string;
    beforeAll(async () => {
      ({ app, url } = await start(when));
    });
    afterAll(() => app.close());

    // Before, the adapter's single hook was the library's or the app's: set before init the app's was dropped
    // silently, set after it every session answered 500 (SessionNotConfiguredError).
    it('runs, and sessions keep working', async () => {
      const first = await request(url).get('/hook/counter').expect(200, { count: 1, hookRan: when });
      await request(url)
        .get('/hook/counter')
        .set('Cookie', cookiePair(first, COOKIE))
        .expect(200, { count: 2, hookRan: when });
    });

    it('runs in the request context, and the accessors work in the handler', async () => {
      await request(url).get('/hook/accessor').expect(200, { hookSaw: when, keys: [] });
    });
  },
);
