/**
 * docs/migrating.md's bridge (test/support/apps/connect-redis-bridge.middleware.ts, the same code): a browser that
 * still carries express-session's cookie, whose session connect-redis keeps in Redis, is signed in once in a new
 * session, and the old session and cookie go.
 */
import { createHmac } from 'node:crypto';
import {
  Controller,
  Get,
  Module,
  Post,
  RequestMethod,
  type INestApplication,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';
import { Session } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { ConnectRedisBridge, OLD_SESSIONS } from '../support/apps/connect-redis-bridge.middleware.js';
import { cookiePair, setCookies } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';

const SECRETS = ['Hn3xQ8vLr2pYt7sWc0bKm5gFj9aEu4iOz6dRq1yTw8'];
const OLD_SECRET = 'keyboard cat'; // express-session's README secret, as old apps have it
const COOKIE = '.Nest.Session';

/** express-session's cookie for session `id`, signed with `secret` as cookie-signature signs it. */
function oldCookie(id: string, secret: string): string {
  const signature = createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
  return `connect.sid=${encodeURIComponent(`s:${id}.${signature}`)}`;
}

/** What connect-redis stores under `sess:<id>`: express-session's JSON, with its cookie. */
const oldSession = (user: string) =>
  JSON.stringify({
    cookie: { originalMaxAge: 86_400_000, expires: '2026-12-31T00:00:00.000Z', httpOnly: true, path: '/' },
    passport: { user },
    cart: ['apple', 'pear'],
  });

@Controller('account')
class AccountController {
  @Get()
  whoami(@Session() session: Session) {
    return { user: session.getString('user') ?? null, cart: session.get<string[]>('cart') ?? null };
  }

  @Post('logout')
  logout(@Session() session: Session) {
    session.abandon();
  }

  @Post('cart')
  add(@Session() session: Session) {
    session.setString('user', 'carol');
    session.set('cart', ['kiwi']);
  }
}

describe('signing in a browser that carries an express-session cookie (docs/migrating.md)', () => {
  let server: RedisServerProcess;
  let old: Redis;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    OLD_SESSIONS.secrets.push('a newer secret the old app signed with', OLD_SECRET);
    server = await RedisServerProcess.start();
    old = server.admin();
    @Module({
      controllers: [AccountController],
      providers: [ConnectRedisBridge, { provide: Redis, useFactory: () => server.admin() }],
    })
    class BridgeModule implements NestModule {
      configure(consumer: MiddlewareConsumer): void {
        consumer.apply(ConnectRedisBridge).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
      }
    }
    ({ app, url } = await startSessionApp(
      { secrets: SECRETS, redis: { host: server.host, port: server.port } },
      { imports: [BridgeModule] },
    ));
  });
  afterAll(async () => {
    await app?.close();
    await server?.stop();
    OLD_SESSIONS.secrets.length = 0;
  });

  it('imports the old session once into a new one, deletes it and its cookie; a sign-out stays signed out', async () => {
    await old.set('sess:abc123', oldSession('alice'), 'EX', 3600);
    const first = await request(url)
      .get('/account')
      .set('Cookie', oldCookie('abc123', OLD_SECRET))
      .expect(200);
    expect(first.body).toEqual({ user: 'alice', cart: ['apple', 'pear'] });
    expect(setCookies(first)).toContain('connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT');
    expect(await old.exists('sess:abc123')).toBe(0);
    const renewed = cookiePair(first, COOKIE);
    expect((await request(url).get('/account').set('Cookie', renewed).expect(200)).body.user).toBe('alice');

    // A browser that kept the old cookie (a request sent before the first answer) finds nothing to import.
    const again = await request(url)
      .get('/account')
      .set('Cookie', oldCookie('abc123', OLD_SECRET))
      .expect(200);
    expect(again.body).toEqual({ user: null, cart: null });

    // Signed out here, the old cookie sent again brings nothing back.
    await request(url)
      .post('/account/logout')
      .set('Cookie', `${renewed}; ${oldCookie('abc123', OLD_SECRET)}`);
    const after = await request(url)
      .get('/account')
      .set('Cookie', oldCookie('abc123', OLD_SECRET))
      .expect(200);
    expect(after.body).toEqual({ user: null, cart: null });
  });

  it('a cookie not signed by an old secret, or tampered with, imports nothing and leaves the old session', async () => {
    await old.set('sess:def456', oldSession('bob'), 'EX', 3600);
    for (const cookie of [
      oldCookie('def456', 'a secret the old app never had'),
      oldCookie('def456', OLD_SECRET).replace('def456', 'def457'),
      'connect.sid=s%3Adef456.%E0%A4%A', // not decodable
      'connect.sid=def456', // unsigned
    ]) {
      const res = await request(url).get('/account').set('Cookie', cookie).expect(200);
      expect(res.body).toEqual({ user: null, cart: null });
    }
    expect(await old.exists('sess:def456')).toBe(1);
    // The newer secret verifies too.
    const res = await request(url)
      .get('/account')
      .set('Cookie', oldCookie('def456', 'a newer secret the old app signed with'))
      .expect(200);
    expect(res.body.user).toBe('bob');
  });

  it('a browser that has a session here already (both apps during the rollout) keeps it; the old one goes', async () => {
    const here = cookiePair(await request(url).post('/account/cart').expect(201), COOKIE);
    await old.set('sess:jkl012', oldSession('carol'), 'EX', 3600);
    const res = await request(url)
      .get('/account')
      .set('Cookie', `${here}; ${oldCookie('jkl012', OLD_SECRET)}`)
      .expect(200);
    expect(res.body).toEqual({ user: 'carol', cart: ['kiwi'] });
    expect(setCookies(res)).toContain('connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT');
    expect(await old.exists('sess:jkl012')).toBe(0);
    expect((await request(url).get('/account').set('Cookie', here).expect(200)).body.cart).toEqual(['kiwi']);
  });

  it('an old session that is not JSON imports nothing and the request still answers', async () => {
    await old.set('sess:ghi789', 'not json', 'EX', 3600);
    const res = await request(url).get('/account').set('Cookie', oldCookie('ghi789', OLD_SECRET)).expect(200);
    expect(res.body).toEqual({ user: null, cart: null });
  });
});
