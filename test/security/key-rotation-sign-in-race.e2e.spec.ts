import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Module, Param, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { MemorySessionStore, Session, SessionModule, type SessionModuleOptions } from 'nest-session-state';
import { gate, releaseAllGates } from '../support/apps/gated-session.controller.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { createPlatformApp, TEST_PLATFORM } from '../support/platform/test-platform.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { randomSecret } from './support/mutations.js';
import { SESSION_COOKIE } from './support/security-app.js';

/** A read that waits at a gate after loading the session (a slow page), a sign-in, and a look at the session. */
@Controller('race')
class RaceController {
  @Get('slow/:gate')
  async slow(@Session() session: Session, @Param('gate') name: string) {
    const cart = session.getString('cart') ?? null;
    await gate(name).pass();
    return { cart };
  }

  @Get('who')
  who(@Session() session: Session) {
    return { user: session.getString('user') ?? null, cart: session.getString('cart') ?? null };
  }

  @Post('cart')
  @HttpCode(200)
  cart(@Session() session: Session) {
    session.setString('cart', 'books');
    return {};
  }

  @Post('login')
  @HttpCode(200)
  login(@Session() session: Session, @Body() body: { user: string }) {
    session.regenerate();
    session.setString('user', body.user);
    return {};
  }
}

async function startApp(options: SessionModuleOptions): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [RaceController] })
  class RaceModule {}
  const logger = new CaptureLogger();
  const ref = await Test.createTestingModule({ imports: [RaceModule] })
    .setLogger(logger)
    .compile();
  const app = createPlatformApp(ref, { logger });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

/** A browser: one cookie jar, replies applied in the order they arrive. */
class Browser {
  cookie: string | undefined;

  async send(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookie !== undefined) headers.set('cookie', `${SESSION_COOKIE}=${this.cookie}`);
    return fetch(url, { ...init, headers });
  }

  receive(reply: Response): void {
    const set = reply.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    if (set !== undefined) this.cookie = set.split(';')[0].slice(SESSION_COOKIE.length + 1);
  }
}

// A cookie under an older secret is re-signed on a read-only use. A sign-in (regenerate()) answered while such a
// read ran must not be undone by the re-signed old key arriving after the sign-in's cookie.
describe(`on ${TEST_PLATFORM}: a re-signed cookie racing a sign-in`, () => {
  let redis: RedisServerProcess;
  let db: TestDatabase;
  const apps: INestApplication[] = [];
  beforeAll(async () => {
    [redis, db] = await Promise.all([RedisServerProcess.start(), TestDatabase.create()]);
  });
  afterAll(async () => {
    releaseAllGates();
    await Promise.all(apps.map((app) => app.close()));
    await redis?.stop();
    await db?.drop();
  });

  const stores: [string, () => SessionModuleOptions][] = [
    ['memory', () => ({ store: new MemorySessionStore() })],
    ['redis', () => ({ redis: { host: redis.host, port: redis.port } })],
    ['postgres', () => ({ postgres: { connectionString: db.url() } })],
  ];
  const OLD = randomSecret();
  const NEW = randomSecret();
  // Where the cookie was made, where the slow read runs, where the sign-in runs.
  const deploys: [string, string[], string[], string[]][] = [
    ['one instance rotated to [new, old]', [OLD], [NEW, OLD], [NEW, OLD]],
    [
      'the second deploy of a rotation: read on [old, new], sign-in on [new, old]',
      [NEW],
      [OLD, NEW],
      [NEW, OLD],
    ],
  ];

  describe.each(stores)('%s store', (storeName, store) => {
    it.each(deploys)('%s: the sign-in stays', async (deployName, made, reading, signingIn) => {
      const options = store();
      const start = async (secrets: string[]) => {
        const started = await startApp({ ...options, secrets });
        apps.push(started.app);
        return started.url;
      };
      const [madeUrl, readUrl, signInUrl] = [await start(made), await start(reading), await start(signingIn)];
      const browser = new Browser();
      browser.receive(await browser.send(`${madeUrl}/race/cart`, { method: 'POST' }));
      expect(browser.cookie).toBeDefined();

      const name = `${storeName} ${deployName}`;
      const slow = browser.send(`${readUrl}/race/slow/${encodeURIComponent(name)}`);
      await gate(name).reached(1);
      const signIn = await browser.send(`${signInUrl}/race/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'ada' }),
      });
      expect(signIn.status).toBe(200);
      browser.receive(signIn);
      gate(name).release();
      const read = await slow;
      expect(read.status).toBe(200);
      expect(await read.json()).toEqual({ cart: 'books' });
      browser.receive(read);

      for (const url of [readUrl, signInUrl]) {
        const who = await browser.send(`${url}/race/who`);
        expect(await who.json()).toEqual({ user: 'ada', cart: 'books' });
      }
    });
  });
});
