import http from 'node:http';
import { Controller, Get, Sse, type INestApplication, type MessageEvent } from '@nestjs/common';
import { interval, map, type Observable } from 'rxjs';
import request from 'supertest';
import { Session } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { lockingStores } from '../support/locking-stores.js';

const COOKIE = '.Nest.Session';
const ACQUIRE_TIMEOUT = 2000;

@Controller('locked')
class LockedStreamController {
  @Sse('events')
  events(@Session() session: Session): Observable<MessageEvent> {
    session.setString('name', 'streaming');
    return interval(30).pipe(map((i) => ({ data: { i } })));
  }

  @Get('counter')
  counter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count, name: session.getString('name') ?? null };
  }
}

/** Opens the event stream with `cookie` and resolves once its first event arrived (the stream stays open). */
function openStream(url: string, cookie: string): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/locked/events`, { headers: { cookie } }, (res) => {
      res.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('data:')) resolve(req);
      });
    });
    req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
  });
}

const STORES = lockingStores('stream-lock');

/**
 * session.lock is taken for a request's read-modify-write and released by the commit before the response's first
 * byte: nothing the request does after that can be saved, so a long-lived stream of it (server-sent events, a large
 * download) does not keep the session's other requests waiting (docs/session.md, Lifetime).
 */
describe.each(STORES)('an @Sse() stream under session.lock (%s store)', (_name, setup) => {
  let app: INestApplication;
  let url: string;
  let stop = () => Promise.resolve();
  beforeAll(async () => {
    const store = await setup();
    stop = store.stop;
    ({ app, url } = await startSessionApp(
      { ...store.options, session: { lock: { acquireTimeout: ACQUIRE_TIMEOUT } } },
      { controllers: [LockedStreamController] },
    ));
  });
  afterAll(async () => {
    await app?.close();
    await stop();
  });

  it("while it streams, the session's other requests take the lock at once and read what the stream's request saved", async () => {
    const cookie = cookiePair(await request(url).get('/locked/counter').expect(200), COOKIE);
    const stream = await openStream(url, cookie);
    try {
      const startedAt = Date.now();
      const { body } = await request(url).get('/locked/counter').set('Cookie', cookie).expect(200);
      expect(body).toEqual({ count: 2, name: 'streaming' });
      expect(Date.now() - startedAt).toBeLessThan(ACQUIRE_TIMEOUT / 2);
    } finally {
      stream.destroy();
    }
  });
});
