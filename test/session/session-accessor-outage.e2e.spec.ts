import {
  Controller,
  Get,
  Injectable,
  UseGuards,
  type CanActivate,
  type INestApplication,
} from '@nestjs/common';
import request from 'supertest';
import { SessionAccessor, SessionUnavailableError } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';

const COOKIE = '.Nest.Session';
const SECRET = 'Gq7vLk2mZr9sXw4nBt1cHy8dJp3fKa6eUo5iNz0Q1W';
const OPERATION_TIMEOUT = 300;

/** An auth guard in the style the README shows: it reads the session through the accessor. */
@Injectable()
class SessionGuard implements CanActivate {
  constructor(private readonly sessions: SessionAccessor) {}

  async canActivate(): Promise<boolean> {
    const session = await this.sessions.load();
    return session.getInt32('count') !== undefined;
  }
}

@Controller('guarded')
class GuardedController {
  @Get()
  @UseGuards(SessionGuard)
  guarded() {
    return { ok: true };
  }
}

describe('SessionAccessor.load() during a store outage', () => {
  let server: RedisServerProcess;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    ({ app, url } = await startSessionApp(
      {
        secrets: [SECRET],
        redis: {
          host: server.host,
          port: server.port,
          operationTimeoutInMilliseconds: OPERATION_TIMEOUT,
          retryTimeoutInMilliseconds: 0,
        },
      },
      { controllers: [GuardedController] },
    ));
  });
  afterAll(async () => {
    await app.close();
    await server.stop();
  });

  it('a guard loading through the accessor answers 503 with the same body as @Session(), not 500', async () => {
    const cookie = cookiePair(await request(url).get('/counter').expect(200), COOKIE);
    await request(url).get('/guarded').set('Cookie', cookie).expect(200, { ok: true });

    await server.pause(3 * OPERATION_TIMEOUT, 'ALL'); // Redis stops answering, mid-test
    const [decorator, accessor] = await Promise.all([
      request(url).get('/read').set('Cookie', cookie),
      request(url).get('/guarded').set('Cookie', cookie),
    ]);
    expect(decorator.status).toBe(503);
    expect(accessor.status).toBe(503);
    expect(accessor.body).toEqual(decorator.body);
    expect(accessor.body).toEqual({
      statusCode: 503,
      message: 'Session state is temporarily unavailable.',
      error: 'Service Unavailable',
      code: 'SESSION_UNAVAILABLE',
    });
  });

  it('the error is one class on both paths: a SessionUnavailableError that is a 503 HttpException', () => {
    const error = new SessionUnavailableError('load', new Error('Redis timed out'));
    expect(error.getStatus()).toBe(503);
    expect(error.getResponse()).toEqual({
      statusCode: 503,
      message: 'Session state is temporarily unavailable.',
      error: 'Service Unavailable',
      code: 'SESSION_UNAVAILABLE',
    });
    expect(error.message).toMatch(/session could not load: Redis timed out/); // the detail stays in logs
    expect(error.name).toBe('SessionUnavailableError');
  });
});
