import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import express from 'express';
import {
  DistributedCache,
  Session,
  SessionConfigurationError,
  SessionModule,
  UserSessions,
} from 'nest-session-state';

@Controller()
class CounterController {
  @Get('counter')
  counter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count };
  }
}

@Module({ imports: [SessionModule.forRoot()], controllers: [CounterController] })
class AppModule {}

/** An adapter for a platform the library does not know (what a third-party adapter reports). */
class KoaLikeAdapter extends ExpressAdapter {
  override getType(): string {
    return 'koa';
  }
}

async function startupError(start: () => Promise<{ close(): Promise<void> }>): Promise<Error> {
  try {
    const app = await start();
    await app.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the application to fail at startup');
}

describe('platforms the library cannot serve fail at startup, naming the supported ones', () => {
  it('an HTTP adapter of another platform', async () => {
    const error = await startupError(async () => {
      const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = ref.createNestApplication(new KoaLikeAdapter(), { logger: false });
      await app.init();
      return app;
    });
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toContain("runs on the HTTP platform 'koa'");
    expect(error.message).toContain(
      'Express (@nestjs/platform-express) and Fastify (@nestjs/platform-fastify)',
    );
  });

  it('an Express app without the response prototype the hold is installed on (the one Express internal used)', async () => {
    const instance = express();
    Object.defineProperty(instance, 'response', { value: undefined });
    const error = await startupError(async () => {
      const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = ref.createNestApplication(new ExpressAdapter(instance), { logger: false });
      await app.init();
      return app;
    });
    expect(error).toBeInstanceOf(SessionConfigurationError);
    expect(error.message).toContain('app.response');
  });
});

describe('an application without an HTTP server (a CLI, a worker, the REPL, a microservice) starts', () => {
  it('an application context: the store, UserSessions and DistributedCache serve it', async () => {
    const context = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const cache = context.get<DistributedCache>(DistributedCache);
      await cache.set('report', new TextEncoder().encode('ready'));
      expect(new TextDecoder().decode(await cache.get('report'))).toBe('ready');
      // What a script that signs a user out everywhere does
      expect(await context.get(UserSessions).revokeAll('ada')).toBe(0);
      expect(await context.get(UserSessions).list('ada')).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("a testing module's init() (no HTTP application created)", async () => {
    const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
    await ref.init();
    await ref.close();
  });

  it('a second SessionModule is refused there as in an HTTP app (each would have its own store and user index)', async () => {
    @Module({ imports: [SessionModule.forRoot()] })
    class FeatureModule {}
    @Module({ imports: [SessionModule.forRoot(), FeatureModule] })
    class TwiceModule {}
    await expect(NestFactory.createApplicationContext(TwiceModule, { logger: false })).rejects.toThrow(
      /SessionModule is imported more than once in this application/,
    );
  });
});
