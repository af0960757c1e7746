import { Controller, Get, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { Session, SessionAccessor, type SessionModuleOptions } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { createPlatformApp } from '../support/platform/test-platform.js';

const COOKIE = '.Nest.Session';
const SECRET = 'Wm4rTq9pXz2sVb7nKc1dLf8gHa3eJu6iOy5tRw0Q3Z';

describe('session logs', () => {
  it('logs session started, expired session accessed, unprotectable cookie and commit failure, never the key or a secret', async () => {
    const logger = new CaptureLogger();
    const options: SessionModuleOptions = { secrets: [SECRET], session: { idleTimeout: 200 } };
    const { app, url } = await startSessionApp(options, { logger });
    const cookies: string[] = [];
    try {
      const first = await request(url).get('/counter');
      cookies.push(cookiePair(first, COOKIE));
      expect(logger.has(/Session started/)).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      await request(url).get('/counter').set('Cookie', cookies[0]).expect(200, { count: 1 });
      expect(logger.has(/\[SessionExpired\] No session stored under this cookie \(it expired/)).toBe(true);
      await request(url).get('/counter').set('Cookie', `${COOKIE}=tampered.value`).expect(200);
      expect(logger.has(/could not be unprotected/)).toBe(true);
    } finally {
      await app.close();
    }
    const text = logger.text();
    const key = cookies[0].split('=')[1].split('.')[0];
    expect(text).not.toContain(key);
    expect(text).not.toContain(cookies[0].split('=')[1]);
    expect(text).not.toContain(SECRET);
  });

  it('a flood of bad cookies does not flood the log', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp({}, { logger });
    try {
      for (let i = 0; i < 50; i++)
        await request(url).get('/counter').set('Cookie', `${COOKIE}=bad${i}`).expect(200);
    } finally {
      await app.close();
    }
    expect(logger.lines.filter((l) => /could not be unprotected/.test(l.message)).length).toBe(1);
  });

  it('warns at startup when no secrets are configured', async () => {
    const logger = new CaptureLogger();
    const { app } = await startSessionApp({}, { logger });
    await app.close();
    expect(logger.has(/No secrets configured/)).toBe(true);
  });
});

describe('errors', () => {
  it('session used without SessionModule: a clear error with the fix', async () => {
    @Controller()
    class NoModuleController {
      constructor() {}
      @Get('s')
      s(@Session() session: Session) {
        return session.keys;
      }
    }
    @Module({ controllers: [NoModuleController], providers: [SessionAccessor] })
    class NoSessionModule {}
    const logger = new CaptureLogger();
    const ref = await Test.createTestingModule({ imports: [NoSessionModule] })
      .setLogger(logger)
      .compile();
    const app = createPlatformApp(ref, { logger });
    await app.listen(0, '127.0.0.1');
    try {
      await request(await app.getUrl())
        .get('/s')
        .expect(500);
    } finally {
      await app.close();
    }
    expect(logger.text()).toMatch(
      /Session has not been configured for this application or request \(used by @Session\(\)\)\. Potential solutions: import SessionModule\.forRoot\(\)/,
    );
    expect(() => ref.get(SessionAccessor).session).toThrow(/has not been configured/);
  });

  it('store down: requests that do not need the session answer, those that do get 503 within the operation timeout, and the store coming back needs no restart', async () => {
    const server = await RedisServerProcess.start();
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp(
      {
        secrets: [SECRET],
        redis: { host: server.host, port: server.port, operationTimeoutInMilliseconds: 300 },
      },
      { logger },
    );
    try {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      await server.kill();
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await request(url).get('/counter').set('Cookie', cookie).expect(503);
        expect(Date.now() - started).toBeLessThan(1000);
      }
      await request(url).get('/untouched').set('Cookie', cookie).expect(200);
      expect(logger.lines.filter((l) => /Redis is failing/.test(l.message)).length).toBe(1);
      await server.restart();
      let status = 0;
      for (let i = 0; i < 40 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await request(url).get('/counter').set('Cookie', cookie)).status;
      }
      expect(status).toBe(200); // the data is gone (no persistence), the app works again
      expect(logger.has(/Redis answers again/)).toBe(true);
    } finally {
      await app.close();
      await server.stop();
    }
  });

  it('store down with throwOnError: false: the page renders without session data; load() and commit() throw', async () => {
    const server = await RedisServerProcess.start();
    const { app, url } = await startSessionApp({
      secrets: [SECRET],
      redis: {
        host: server.host,
        port: server.port,
        operationTimeoutInMilliseconds: 300,
        throwOnError: false,
      },
    });
    try {
      const cookie = cookiePair(await request(url).get('/counter'), COOKIE);
      await server.kill();
      const res = await request(url).get('/read').set('Cookie', cookie).expect(200);
      expect(res.body.available).toBe(false);
      // accessor.load() throws SessionUnavailableError; uncaught, it answers its 503
      await request(url).get('/service').set('Cookie', cookie).expect(503);
    } finally {
      await app.close();
      await server.stop();
    }
  });
});
