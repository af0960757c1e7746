/**
 * Every log line of the library carries a stable event name (`[SessionCommitFailed] ...`, as ASP.NET's
 * LoggerMessage EventIds): asserted on real lines from real apps, and kept true for future lines by
 * a scan of the sources (no logger call that bypasses logEvent).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { Controller, HttpCode, Post } from '@nestjs/common';
import { MemorySessionStore, Session, SessionLogEvents } from 'nest-session-state';
import { GatedSessionController, gate, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'libs/session-state/src');
const COOKIE = '.Nest.Session';
const SECRET = 'Wm4rTq9pXz2sVb7nKc1dLf8gHa3eJu6iOy5tRw0Q3Z';

/** The lines of `logger` that carry event `name`, at its level. */
function linesOf(logger: CaptureLogger, name: keyof typeof SessionLogEvents) {
  const event = SessionLogEvents[name];
  return logger.lines.filter((l) => l.message.startsWith(`[${event.name}] `) && l.level === event.level);
}

describe('log event names', () => {
  it('ids and names are unique, and each name is its key', () => {
    const events = Object.entries(SessionLogEvents);
    expect(events.length).toBeGreaterThan(20);
    for (const [key, event] of events) expect(event.name).toBe(key);
    expect(new Set(events.map(([, e]) => e.id)).size).toBe(events.length);
  });

  it('every logger call in the library goes through logEvent (so every line has a name)', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith('.ts') && !path.endsWith('.spec.ts')) files.push(path);
      }
    };
    walk(SRC);
    const bypassing = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${relative(ROOT, file)}:${i + 1}` }))
        .filter(({ line }) => /\blogger\??\.(log|warn|error|debug|verbose|fatal)\??\.?\(/.test(line))
        .filter(({ line }) => !/^\s*\*/.test(line)) // JSDoc examples
        .map(({ at }) => at),
    );
    expect(bypassing).toEqual([]);
  });

  it('session and TempData lines carry their names, and never the key or a secret', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp({ session: { idleTimeout: 200 } }, { logger });
    let cookie = '';
    try {
      expect(linesOf(logger, 'EphemeralKeyRing')).toHaveLength(1);
      cookie = cookiePair(await request(url).get('/counter').expect(200), COOKIE);
      expect(linesOf(logger, 'SessionStarted')).toHaveLength(1);
      await request(url).get('/counter').set('Cookie', `${COOKIE}=tampered.value`).expect(200);
      expect(linesOf(logger, 'SessionCookieRejected')).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await request(url).get('/counter').set('Cookie', cookie).expect(200);
      expect(linesOf(logger, 'SessionExpired')).toHaveLength(1);
      // A cookie whose session is gone, replayed: at most one line per 10 s (anyone can send it again and again).
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 300)); // expired again
        await request(url).get('/read').set('Cookie', cookie).expect(200);
      }
      expect(linesOf(logger, 'SessionExpired')).toHaveLength(1);
    } finally {
      await app.close();
    }
    expect(logger.text()).not.toContain(cookie.split('=')[1]);
  });

  it('a bad TempData cookie: TempDataCookieRejected', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp({ secrets: [SECRET] }, { logger });
    try {
      await request(url).get('/temp').set('Cookie', '.Nest.TempData=garbage').expect(200);
      expect(linesOf(logger, 'TempDataCookieRejected')).toHaveLength(1);
    } finally {
      await app.close();
    }
    expect(logger.text()).not.toContain(SECRET);
  });

  it('SessionStarted once for a new session stored under the key regenerate() gave it after a failed first commit', async () => {
    class FailsOnce extends MemorySessionStore {
      failed = false;
      override commit(...args: Parameters<MemorySessionStore['commit']>): Promise<void> {
        if (this.failed) return super.commit(...args);
        this.failed = true;
        return Promise.reject(new Error('first commit fails'));
      }
    }
    @Controller()
    class FailThenRegenerate {
      @Post('fail-then-regenerate')
      @HttpCode(200)
      async run(@Session() session: Session) {
        session.setString('cart', 'tea');
        const committed = await session.commit().then(
          () => true,
          () => false,
        );
        session.regenerate(); // a sign-in: the session is stored under the new key at the end of the request
        return { committed };
      }
    }
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp(
      { secrets: [SECRET], store: new FailsOnce() },
      { logger, controllers: [FailThenRegenerate] },
    );
    try {
      const res = await request(url).post('/fail-then-regenerate').expect(200, { committed: false });
      const cookie = cookiePair(res, COOKIE);
      await request(url).get('/keys').set('Cookie', cookie).expect(200, { cart: 'tea' });
      expect(linesOf(logger, 'SessionStarted')).toHaveLength(1);
    } finally {
      await app.close();
    }
  });

  it('a commit the store refuses (413 over maxKeys): SessionCommitRefused, not SessionCommitFailed', async () => {
    const logger = new CaptureLogger();
    const { app, url } = await startSessionApp(
      { secrets: [SECRET], session: { maxKeys: 2 } },
      { logger, controllers: [GatedSessionController] },
    );
    try {
      const cookie = cookiePair(await request(url).post('/set/a').expect(200), COOKIE);
      // Both load one key and add one (two: within the limit at set); the later commit would make three.
      const racing = ['b', 'c'].map((key) =>
        request(url)
          .post(`/gated/refused/set/${key}`)
          .set('Cookie', cookie)
          .then((r) => r.status),
      );
      await gate('refused').reached(2);
      gate('refused').release();
      expect((await Promise.all(racing)).sort()).toEqual([200, 413]);
      const [line] = linesOf(logger, 'SessionCommitRefused');
      expect(line.message).toMatch(/nothing of it was applied \(413 SESSION_LIMIT_EXCEEDED\)/);
      expect(linesOf(logger, 'SessionCommitRefused')).toHaveLength(1);
      expect(linesOf(logger, 'SessionCommitFailed')).toHaveLength(0);
    } finally {
      releaseAllGates();
      await app.close();
    }
    expect(logger.text()).not.toContain(SECRET);
  });

  it('Redis down and back: SessionStoreUnavailable, SessionLoadFailed, then SessionStoreRecovered', async () => {
    const server = await RedisServerProcess.start();
    const logger = new CaptureLogger();
    @Controller()
    class CommitThenEmpty {
      @Post('commit-then-empty')
      @HttpCode(200)
      async run(@Session() session: Session) {
        session.setString('draft', 'x');
        const committed = await session.commit().then(
          () => true,
          () => false,
        );
        session.remove('draft');
        return { committed };
      }
    }
    const { app, url } = await startSessionApp(
      {
        secrets: [SECRET],
        redis: {
          host: server.host,
          port: server.port,
          operationTimeoutInMilliseconds: 250,
          retryTimeoutInMilliseconds: 0,
        },
      },
      { logger, controllers: [CommitThenEmpty] },
    );
    try {
      const cookie = cookiePair(await request(url).get('/counter').expect(200), COOKIE);
      await server.kill();
      await request(url).get('/read').set('Cookie', cookie).expect(503);
      expect(linesOf(logger, 'SessionStoreUnavailable').length).toBeGreaterThanOrEqual(1);
      expect(linesOf(logger, 'SessionLoadFailed')).toHaveLength(1);
      // A new visitor's first value: the commit fails, no cookie goes out, and no session started.
      const lost = await request(url).get('/counter').expect(503);
      expect(lost.headers['set-cookie']).toBeUndefined();
      expect(linesOf(logger, 'SessionCommitFailed')).toHaveLength(1);
      expect(linesOf(logger, 'SessionStarted')).toHaveLength(1); // the first visitor's, before the outage
      // Its commit failed, and the app emptied the session: the key drawn for it started nothing either.
      await request(url).post('/commit-then-empty').expect(200, { committed: false });
      expect(linesOf(logger, 'SessionStarted')).toHaveLength(1);
      expect(linesOf(logger, 'SessionStoreUnavailable')[0].context).toBe('RedisConnection');
      await server.restart();
      for (let i = 0; i < 100 && linesOf(logger, 'SessionStoreRecovered').length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(linesOf(logger, 'SessionStoreRecovered')).toHaveLength(1);
    } finally {
      await app.close();
      await server.stop();
    }
  });
});
