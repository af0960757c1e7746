import {
  Catch,
  Controller,
  Get,
  Injectable,
  Module,
  NotFoundException,
  UseFilters,
  UseGuards,
  type ArgumentsHost,
  type CanActivate,
  type ExceptionFilter,
} from '@nestjs/common';
import request from 'supertest';
import {
  DistributedCache,
  InjectDistributedCache,
  SessionAccessor,
  SessionModule,
  getCacheString,
  setCacheString,
  type SessionModuleOptions,
  type SessionModuleOptionsFactory,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess, freePort } from '../support/redis/index.js';
import { sendBody } from '../support/platform/test-platform.js';

const COOKIE = '.Nest.Session';

@Injectable()
class LoggedInGuard implements CanActivate {
  constructor(private readonly sessions: SessionAccessor) {}
  async canActivate(): Promise<boolean> {
    const session = await this.sessions.load();
    return session.getString('name') !== undefined;
  }
}

@Catch(NotFoundException)
class SessionAwareFilter implements ExceptionFilter {
  constructor(private readonly sessions: SessionAccessor) {}
  async catch(_error: NotFoundException, host: ArgumentsHost) {
    const session = await this.sessions.load();
    session.setString('lastMissing', 'yes');
    sendBody(host.switchToHttp().getResponse(), { name: session.getString('name') ?? null }, 404);
  }
}

@Injectable()
class CacheUser {
  constructor(@InjectDistributedCache() private readonly cache: DistributedCache) {}
  async roundTrip(): Promise<string | undefined> {
    await setCacheString(this.cache, 'greeting', 'hello', { slidingExpiration: 60_000 });
    return getCacheString(this.cache, 'greeting');
  }
}

@Controller('pipeline')
class PipelineController {
  constructor(private readonly cacheUser: CacheUser) {}

  @Get('guarded')
  @UseGuards(LoggedInGuard)
  guarded() {
    return { ok: true };
  }

  @Get('missing')
  @UseFilters(SessionAwareFilter)
  missing() {
    throw new NotFoundException();
  }

  @Get('cache')
  async cache() {
    return { value: await this.cacheUser.roundTrip() };
  }
}

@Module({ providers: [CacheUser, LoggedInGuard], exports: [CacheUser, LoggedInGuard] })
class CacheUserModule {}

describe('session in guards, filters and services', () => {
  it('a guard reads the session; an exception filter writes it; the DistributedCache is injectable', async () => {
    const { app, url } = await startSessionApp(
      {},
      { controllers: [PipelineController], imports: [CacheUserModule] },
    );
    try {
      await request(url).get('/pipeline/guarded').expect(403);
      const cookie = cookiePair(await request(url).post('/set/name').send({ value: 'Ada' }), COOKIE);
      await request(url).get('/pipeline/guarded').set('Cookie', cookie).expect(200, { ok: true });
      await request(url).get('/pipeline/missing').set('Cookie', cookie).expect(404, { name: 'Ada' });
      const { body } = await request(url).get('/keys').set('Cookie', cookie);
      expect(body.lastMissing).toBe('yes');
      await request(url).get('/pipeline/cache').expect(200, { value: 'hello' });
    } finally {
      await app.close();
    }
  });

  it('forRootAsync with useClass', async () => {
    @Injectable()
    class OptionsFactory implements SessionModuleOptionsFactory {
      createSessionOptions(): SessionModuleOptions {
        return { session: { cookie: { name: 'from-class' } } };
      }
    }
    const module = SessionModule.forRootAsync({ useClass: OptionsFactory });
    const { app, url } = await startSessionApp({}, { module });
    try {
      const res = await request(url).get('/counter');
      expect(cookiePair(res, 'from-class')).toMatch(/^from-class=/);
    } finally {
      await app.close();
    }
  });
});

describe('session on Redis: lock, explicit commit, startup errors', () => {
  let server: RedisServerProcess;
  beforeAll(async () => {
    server = await RedisServerProcess.start();
  });
  afterAll(() => server.stop());

  it('the opt-in lock serialises two overlapping requests on Redis and leaves no lock key behind', async () => {
    const { app, url } = await startSessionApp({
      redis: { host: server.host, port: server.port, applicationName: 'lock' },
      session: { lock: { retryInterval: 10 } },
    });
    try {
      const cookie = cookiePair(await request(url).post('/set/seed'), COOKIE);
      const started = Date.now();
      await Promise.all([
        request(url).get('/slow-counter').set('Cookie', cookie).expect(200),
        request(url).get('/slow-counter').set('Cookie', cookie).expect(200),
      ]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      const { body } = await request(url).get('/read').set('Cookie', cookie);
      expect(body.count).toBe(2);
      expect(await server.admin().keys('{lock_*}_Lock')).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('commit() throws when the store is down; the app can handle it', async () => {
    const own = await RedisServerProcess.start();
    const { app, url } = await startSessionApp({
      redis: { host: own.host, port: own.port, operationTimeoutInMilliseconds: 200, throwOnError: false },
    });
    try {
      const cookie = cookiePair(await request(url).post('/set/seed'), COOKIE);
      await request(url).post('/explicit-commit').set('Cookie', cookie).expect(200, { committed: true });
      await own.pause(1000);
      const { body } = await request(url).post('/explicit-commit').set('Cookie', cookie).expect(200);
      expect(body).toEqual({ committed: false, error: 'SessionUnavailableError' });
    } finally {
      await app.close();
      await own.stop();
    }
  });

  it('a misconfigured Redis fails startup with the option name, within the connection timeout', async () => {
    const port = await freePort();
    const started = Date.now();
    await expect(startSessionApp({ redis: { port, connectionTimeoutInMilliseconds: 1000 } })).rejects.toThrow(
      /check the host and port options/,
    );
    await expect(startSessionApp({ redis: { url: 'redis://:70000' } })).rejects.toThrow(/url/);
    const guarded = await RedisServerProcess.start({ password: 'the-right-password' });
    try {
      await expect(
        startSessionApp({ redis: { host: guarded.host, port: guarded.port, accessKey: 'nope' } }),
      ).rejects.toThrow(/accessKey/);
    } finally {
      await guarded.stop();
    }
    expect(Date.now() - started).toBeLessThan(6000);
  });
});
