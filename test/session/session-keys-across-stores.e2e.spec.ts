import { Body, Controller, Get, HttpCode, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Session, type SessionModuleOptions } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisServerProcess } from '../support/redis/index.js';

/**
 * A key that works on the memory default works the same on Redis and PostgreSQL, as an app that moves to one
 * in production meets it: the same keys come back, in the same order, and a key no store can keep apart is
 * refused at `set` everywhere (a black-box probe: PostgreSQL dropped "__proto__" and answered a lone surrogate
 * with a 503 logged as an outage; Redis merged lone surrogates into one U+FFFD field).
 */
const COOKIE = '.Nest.Session';

@Controller('keys-across')
class KeysController {
  /** Sets each key to its position; a key refused at `set` is reported, not thrown. */
  @Post()
  @HttpCode(200)
  set(@Session() session: Session, @Body() body: { keys: string[] }) {
    const refused: string[] = [];
    body.keys.forEach((key, i) => {
      try {
        session.setString(key, `v${i}`);
      } catch (error) {
        refused.push(`${(error as Error).name}: ${(error as Error).message}`);
      }
    });
    return { refused };
  }

  /** Entries as pairs: an object would turn a "__proto__" key into a prototype on the client. */
  @Get()
  entries(@Session() session: Session) {
    return session.keys.map((key) => [key, session.getString(key)]);
  }
}

type StoreSetup = () => Promise<{ options: SessionModuleOptions; close(): Promise<void> }>;

const redisStore =
  (nearCache: boolean): StoreSetup =>
  async () => {
    const server = await RedisServerProcess.start();
    return {
      options: { redis: { host: server.host, port: server.port, applicationName: 'keys', nearCache } },
      close: () => server.stop(),
    };
  };

const stores: [string, StoreSetup][] = [
  ['memory', () => Promise.resolve({ options: {}, close: () => Promise.resolve() })],
  ['Redis', redisStore(false)],
  ['Redis with the near cache', redisStore(true)],
  [
    'PostgreSQL',
    async () => {
      const db = await TestDatabase.create();
      return { options: { postgres: { connectionString: db.url() } }, close: () => db.drop() };
    },
  ],
];

describe.each(stores)('session keys on %s', (_name, setup) => {
  let app: INestApplication;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const store = await setup();
    close = () => store.close();
    ({ app, url } = await startSessionApp(store.options, { controllers: [KeysController] }));
  });
  afterAll(async () => {
    await app.close();
    await close();
  });

  async function setKeys(keys: string[], cookie?: string) {
    // Raw JSON: a lone surrogate must reach the app as the escape a client sends, not as U+FFFD.
    const body = `{"keys":[${keys.map((k) => JSON.stringify(k)).join(',')}]}`;
    const req = request(url).post('/keys-across').set('Content-Type', 'application/json');
    if (cookie) req.set('Cookie', cookie);
    return req.send(body).expect(200);
  }

  it('stores "__proto__", "constructor" and "hasOwnProperty" as keys like any other', async () => {
    const keys = ['cart', '__proto__', 'constructor', 'hasOwnProperty'];
    const res = await setKeys(keys);
    expect(res.body).toEqual({ refused: [] });
    const entries = await request(url).get('/keys-across').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(entries.body).toEqual([
      ['__proto__', 'v1'],
      ['cart', 'v0'],
      ['constructor', 'v2'],
      ['hasOwnProperty', 'v3'],
    ]);
  });

  it('lists keys sorted, also past the size at which Redis stops keeping a hash in insertion order', async () => {
    // 150 keys, set from the last to the first: Redis converts a hash of more than 128 fields to a hashtable.
    const keys = Array.from({ length: 150 }, (_, i) => `key-${String(150 - i).padStart(3, '0')}`);
    const res = await setKeys(keys);
    const entries = await request(url).get('/keys-across').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect((entries.body as [string, string][]).map(([key]) => key)).toEqual([...keys].sort());
  });

  it("refuses a key with a lone surrogate at set, naming it, and keeps the request's other keys", async () => {
    const res = await setKeys(['kept', 'draft:\ud83d', 'a\udbff']);
    expect(res.body.refused).toEqual([
      expect.stringMatching(
        /^TypeError: Session keys must be well-formed UTF-16 strings \(got "draft:\\ud83d"/,
      ),
      expect.stringMatching(/^TypeError: Session keys must be well-formed UTF-16 strings \(got "a\\udbff"/),
    ]);
    const cookie = cookiePair(res, COOKIE);
    const entries = await request(url).get('/keys-across').set('Cookie', cookie).expect(200);
    expect(entries.body).toEqual([['kept', 'v0']]);
    // A surrogate pair is a well-formed key: stored and read back as sent.
    await setKeys(['\ud83d\ude00'], cookie);
    const after = await request(url).get('/keys-across').set('Cookie', cookie).expect(200);
    expect(after.body).toEqual([
      ['kept', 'v0'],
      ['\ud83d\ude00', 'v0'],
    ]);
  });
});
