import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { jest } from '@jest/globals';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import request from 'supertest';
import {
  InjectSessionStore,
  MemorySessionStore,
  Session,
  SessionConfigurationError,
  SessionModule,
  SessionStore,
  type SessionData,
} from 'nest-session-state';
import { createPlatformApp, TEST_PLATFORM } from '../support/platform/test-platform.js';
import { freePort } from '../support/redis/index.js';

/**
 * An app's e2e tests in Nest's testing module (docs/configuration.md, "Testing"): the store replaced with
 * overrideProvider(SessionStore) is the one the library uses, and a module configured for Redis is replaced
 * with the in-memory default by overrideModule, so the tests need no Redis.
 */
class CountingStore extends MemorySessionStore {
  loads = 0;
  override load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    this.loads++;
    return super.load(sessionKey, idleTimeoutMs);
  }
}

@Injectable()
class StoreUser {
  constructor(@InjectSessionStore() readonly store: SessionStore) {}
}

@Controller()
class CounterController {
  @Get('counter')
  counter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count };
  }
}

async function serve(builder: TestingModuleBuilder) {
  const ref = await builder.compile();
  const app = createPlatformApp(ref, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

async function countTwice(url: string): Promise<void> {
  const first = await request(url).get('/counter').expect(200, { count: 1 });
  const cookie = (first.headers['set-cookie'] as unknown as string[])[0].split(';')[0];
  await request(url).get('/counter').set('Cookie', cookie).expect(200, { count: 2 });
}

describe("an app's tests in Nest's testing module", () => {
  it('overrideProvider(SessionStore) replaces the store the library uses and the one the app injects', async () => {
    @Module({ imports: [SessionModule.forRoot()], controllers: [CounterController], providers: [StoreUser] })
    class AppModule {}
    const store = new CountingStore();
    const { app, url } = await serve(
      Test.createTestingModule({ imports: [AppModule] })
        .overrideProvider(SessionStore)
        .useValue(store),
    );
    try {
      await countTwice(url);
      expect(store.loads).toBe(1); // the second request's; the first had no cookie
      expect(app.get(StoreUser).store).toBe(store);
    } finally {
      await app.close();
    }
  });

  it('a replacement that is not a SessionStore fails at startup, as the store option does', async () => {
    @Module({ imports: [SessionModule.forRoot()], controllers: [CounterController] })
    class AppModule {}
    const failure = Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(SessionStore)
      .useValue({ load: () => undefined })
      .compile();
    await expect(failure).rejects.toThrow(SessionConfigurationError);
    await expect(failure).rejects.toThrow(
      /^The SessionStore provider \(overridden\) does not implement SessionStore \(missing commit, refresh, remove\)/,
    );
  });

  it("runs under Jest's fake timers (what the platform itself needs real), and idle expiry follows the faked clock", async () => {
    // Fastify itself stops answering when nextTick or queueMicrotask is faked; Express and the library need nothing.
    jest.useFakeTimers(TEST_PLATFORM === 'fastify' ? { doNotFake: ['nextTick', 'queueMicrotask'] } : {});
    try {
      @Module({
        imports: [SessionModule.forRoot({ session: { idleTimeout: 60_000 } })],
        controllers: [CounterController],
      })
      class AppModule {}
      const { app, url } = await serve(Test.createTestingModule({ imports: [AppModule] }));
      try {
        const agent = request.agent(url);
        await agent.get('/counter').expect(200, { count: 1 });
        await agent.get('/counter').expect(200, { count: 2 });
        jest.advanceTimersByTime(60_001);
        await agent.get('/counter').expect(200, { count: 1 }); // the session expired in the faked minute
      } finally {
        await app.close();
      }
    } finally {
      jest.useRealTimers();
    }
  });

  it('overrideModule swaps a Redis configuration for the in-memory default: no Redis needed', async () => {
    // The app keeps its SessionModule import in one constant, so a test can name it.
    const nothingListens = await freePort();
    const SessionImport = SessionModule.forRoot({
      redis: { host: '127.0.0.1', port: nothingListens, connectionTimeoutInMilliseconds: 500 },
    });
    @Module({ imports: [SessionImport], controllers: [CounterController] })
    class AppModule {}
    const { app, url } = await serve(
      Test.createTestingModule({ imports: [AppModule] })
        .overrideModule(SessionImport)
        .useModule(SessionModule.forRoot()),
    );
    try {
      await countTwice(url);
    } finally {
      await app.close();
    }
  });
});
