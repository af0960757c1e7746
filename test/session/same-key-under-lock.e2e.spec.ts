/**
 * The README's comparison with express-session + connect-flash: concurrent requests of one visitor that change the
 * same key (a cart kept as one value, a list of flash messages) lose nothing with `session.lock`, and TempData in
 * the session provider under the lock loses no message. Memory and Redis, 30 requests at once with one cookie, each
 * reading, waiting a little (the window a lost update needs), then writing.
 */
import { Controller, Get, HttpCode, Param, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Session, TempData, type SessionModuleOptions, type TempDataDictionary } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';

const SECRETS = ['Vb7nQ2xLp9rYt4sWc1kKm6gFj3aEu8iOz0dRq5yTw2'];
const COOKIE = '.Nest.Session';
const AT_ONCE = 30;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

@Controller()
class CartController {
  @Post('cart/:item')
  @HttpCode(200)
  async add(@Session() session: Session, @Param('item') item: string) {
    const cart = session.get<string[]>('cart') ?? [];
    await sleep(5);
    session.set('cart', [...cart, item]);
  }

  @Get('cart')
  cart(@Session() session: Session) {
    return session.get<string[]>('cart') ?? [];
  }

  @Post('flash/:message')
  @HttpCode(200)
  async flash(@TempData() tempData: TempDataDictionary, @Param('message') message: string) {
    const messages = tempData.peek<string[]>('info') ?? [];
    await sleep(5);
    tempData.set('info', [...messages, message]);
  }

  @Get('flash')
  messages(@TempData('info') messages?: string[]) {
    return messages ?? [];
  }
}

const stores: [string, () => Promise<{ options: SessionModuleOptions; stop(): Promise<void> }>][] = [
  ['memory', () => Promise.resolve({ options: {}, stop: () => Promise.resolve() })],
  [
    'Redis',
    async () => {
      const server = await RedisServerProcess.start();
      return { options: { redis: { host: server.host, port: server.port } }, stop: () => server.stop() };
    },
  ],
];

describe.each(stores)('the same key written by %s requests at once, under session.lock', (_name, start) => {
  let app: INestApplication;
  let url: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const store = await start();
    stop = store.stop;
    ({ app, url } = await startSessionApp(
      {
        secrets: SECRETS,
        ...store.options,
        session: { lock: { ttl: 10_000, acquireTimeout: 20_000, retryInterval: 5 } },
        tempData: { provider: 'session' },
      },
      { controllers: [CartController] },
    ));
  });
  afterAll(async () => {
    await app?.close();
    await stop?.();
  });

  /** A visitor's cookie, its session started. */
  const visitor = async () => cookiePair(await request(url).post('/cart/first').expect(200), COOKIE);
  const items = Array.from({ length: AT_ONCE }, (_, i) => `item${i}`);

  it(`a cart kept as one value: ${AT_ONCE} adds at once, none lost`, async () => {
    const cookie = await visitor();
    await Promise.all(
      items.map((item) => request(url).post(`/cart/${item}`).set('Cookie', cookie).expect(200)),
    );
    const cart = (await request(url).get('/cart').set('Cookie', cookie).expect(200)).body as string[];
    expect(cart.slice().sort()).toEqual(['first', ...items].sort());
  });

  it(`TempData in the session: ${AT_ONCE} messages added at once, each shown once`, async () => {
    const cookie = await visitor();
    await Promise.all(
      items.map((item) => request(url).post(`/flash/${item}`).set('Cookie', cookie).expect(200)),
    );
    const shown = (await request(url).get('/flash').set('Cookie', cookie).expect(200)).body as string[];
    expect(shown.slice().sort()).toEqual(items.slice().sort());
    expect((await request(url).get('/flash').set('Cookie', cookie).expect(200)).body).toEqual([]);
  });
});
