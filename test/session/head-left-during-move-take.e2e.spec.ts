import { Controller, Get, Module, Res, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  MemorySessionStore,
  Session,
  SessionModule,
  UserSessions,
  type EndedSessionMark,
  type SessionData,
  type SessionModuleOptions,
  type SessionStore,
} from 'nest-session-state';
import { RedisConnection, RedisSessionStore, resolveRedisCacheOptions } from 'nest-session-state/redis';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair, findSetCookie } from '../support/cookie-jar.js';
import { BIG, flood, getFlood } from '../support/flood-response.js';
import { OneShotGate } from '../support/one-shot-gate.js';
import { createPlatformApp, type PlatformResponse } from '../support/platform/test-platform.js';
import { RedisServerProcess } from '../support/redis/index.js';

/**
 * `regenerate()` moves the session: a write under the new key, then a take of the old one. A stream that outgrows
 * the response hold while the take runs sends the head without the new cookie, and the browser keeps the old key,
 * which the take has emptied. The session used to be lost there (every value, the sign-in with it); now it goes back
 * under the old key, as the take found it, without the values the request set (a sign-in under a pre-sign-in key
 * would be the session fixation `regenerate()` prevents) and without a binding to a user, and the new key's copy is
 * deleted.
 */
const COOKIE = '.Nest.Session';

/**
 * Holds the next take until `release()`, after it was armed: `before` it reaches the store, or `after` it applied
 * (its reply on its way).
 */
class TakeHold {
  private readonly gate = new OneShotGate();
  private when: 'before' | 'after' | undefined;
  /** Resolves once the armed take waits. */
  reached: Promise<void> = Promise.resolve();
  release: () => void = () => undefined;

  arm(when: 'before' | 'after' = 'before'): void {
    this.when = when;
    ({ reached: this.reached, release: this.release } = this.gate.arm());
  }

  /** Runs `take` with the armed hold around it. */
  async around<T>(take: () => Promise<T>): Promise<T> {
    const when = this.when;
    this.when = undefined;
    if (when === 'before') await this.gate.pass();
    const taken = await take();
    if (when === 'after') await this.gate.pass();
    return taken;
  }
}

const hold = new TakeHold();

class HeldTakeMemoryStore extends MemorySessionStore {
  override take(key: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    return hold.around(() => super.take(key, mark));
  }
}

class HeldTakeRedisStore extends RedisSessionStore {
  override take(key: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    return hold.around(() => super.take(key, mark));
  }
}

@Controller('take-held')
class TakeHeldController {
  constructor(private readonly users: UserSessions) {}

  /** How the last move's commit ended. */
  last = '';

  @Get('start')
  start(@Session() session: Session) {
    session.setString('name', 'first');
    session.setString('color', 'blue');
    return { ok: true };
  }

  @Get('sign-in')
  async signIn(@Session() session: Session) {
    session.setString('name', 'first');
    session.setString('color', 'blue');
    await this.users.bind(session, 'ada');
    return { ok: true };
  }

  @Get('rename')
  rename(@Session() session: Session) {
    session.setString('name', 'renamed');
    return { ok: true };
  }

  /** A sign-in that also sets a value the session holds. */
  @Get('login')
  async login(@Session() session: Session, @Res() res: PlatformResponse) {
    session.regenerate();
    session.setString('user', 'ada');
    session.setString('name', 'second');
    await this.floodWhileTaking(session, res);
  }

  /** A sign-in that drops a value. */
  @Get('login-remove')
  async loginRemove(@Session() session: Session, @Res() res: PlatformResponse) {
    session.remove('color');
    session.regenerate();
    session.setString('user', 'ada');
    await this.floodWhileTaking(session, res);
  }

  /** A sign-out: clear() and regenerate(). */
  @Get('sign-out')
  async signOut(@Session() session: Session, @Res() res: PlatformResponse) {
    session.clear();
    session.regenerate();
    await this.floodWhileTaking(session, res);
  }

  /** A re-authentication of a bound session. */
  @Get('reauth')
  async reauth(@Session() session: Session, @Res() res: PlatformResponse) {
    session.regenerate();
    session.setString('reauth', 'yes');
    await this.floodWhileTaking(session, res);
  }

  /** Commits the move; while its take waits (armed by the test), the response outgrows the hold. */
  private async floodWhileTaking(session: Session, res: PlatformResponse): Promise<void> {
    const committed = session.commit().then(
      () => 'committed',
      (error: Error) => error.name,
    );
    await hold.reached;
    flood(res);
    this.last = await committed;
  }

  @Get('revoke-all')
  async revokeAll() {
    return { revoked: await this.users.revokeAll('ada') };
  }

  @Get('listed')
  async listed() {
    return { count: (await this.users.list('ada')).length };
  }

  @Get('last')
  lastOutcome() {
    return { outcome: this.last };
  }

  @Get('read')
  read(@Session() session: Session) {
    return {
      name: session.getString('name') ?? null,
      color: session.getString('color') ?? null,
      user: session.getString('user') ?? null,
      reauth: session.getString('reauth') ?? null,
      boundTo: this.users.userOf(session) ?? null,
    };
  }
}

interface StoreSetup {
  store: SessionStore;
  /** How many sessions the store holds. */
  sessions(): Promise<number>;
  stop(): Promise<void>;
}

/** A Redis store whose takes wait at the hold, on a redis-server of its own. */
async function heldTakeRedis(): Promise<StoreSetup> {
  const server = await RedisServerProcess.start();
  const connection = new RedisConnection(
    resolveRedisCacheOptions({ host: server.host, port: server.port, applicationName: 'take-held' }),
  );
  await connection.connect();
  return {
    store: new HeldTakeRedisStore(connection),
    sessions: async () => (await server.admin().keys('*_Data')).length,
    stop: async () => {
      await connection.close();
      await server.stop();
    },
  };
}

const STORES: [string, SessionModuleOptions['session'], () => Promise<StoreSetup>][] = [
  [
    'the memory store',
    undefined,
    () => {
      const store = new HeldTakeMemoryStore();
      return Promise.resolve({
        store,
        sessions: () => Promise.resolve(store.count),
        stop: () => Promise.resolve(),
      });
    },
  ],
  ['Redis', undefined, heldTakeRedis],
  ['Redis, under session.lock', { lock: { ttl: 5_000, acquireTimeout: 2_000 } }, heldTakeRedis],
];

describe.each(STORES)('the head leaves while regenerate() takes the old key, on %s', (_, session, setup) => {
  const logger = new CaptureLogger();
  let app: INestApplication;
  let url: string;
  let store: StoreSetup;
  beforeAll(async () => {
    store = await setup();
    @Module({
      imports: [SessionModule.forRoot({ store: store.store, session })],
      controllers: [TakeHeldController],
    })
    class TakeHeldAppModule {}
    const ref = await Test.createTestingModule({ imports: [TakeHeldAppModule] }).compile();
    app = createPlatformApp(ref, { logger });
    await app.listen(0, '127.0.0.1');
    url = await app.getUrl();
  });
  afterAll(async () => {
    await app.close();
    await store.stop();
  });

  /** What /take-held/read answers for a session holding `values` (null for the rest). */
  const stored = (values: Record<string, string>) => ({
    name: null,
    color: null,
    user: null,
    reauth: null,
    boundTo: null,
    ...values,
  });
  const read = async (cookie: string) =>
    (await request(url).get('/take-held/read').set('Cookie', cookie).expect(200)).body as Record<
      string,
      unknown
    >;

  /**
   * Sends `path` with a session started by `start`; its take waits until `meanwhile` (if any, sent with the same
   * cookie) answered; `after`: the take waits once it applied. `ends`: the session ends (the store holds one session
   * less after it). Returns the cookie and the warning the undo logged.
   */
  async function takenWhileFlooding(
    path: string,
    {
      start = '/take-held/start',
      meanwhile,
      ends = false,
      after = false,
    }: { start?: string; meanwhile?: string; ends?: boolean; after?: boolean } = {},
  ): Promise<{ cookie: string; warning: string }> {
    logger.lines.length = 0;
    const cookie = cookiePair(await request(url).get(start).expect(200), COOKIE);
    const before = await store.sessions();
    hold.arm(after ? 'after' : 'before');
    const flooding = getFlood(url, path, cookie).then((res) => res);
    await hold.reached;
    if (meanwhile) await request(url).get(meanwhile).set('Cookie', cookie).expect(200);
    hold.release();
    const res = await flooding;
    expect((res.body as Buffer).length).toBe(BIG.length);
    expect(findSetCookie(res, COOKIE)).toBeUndefined();
    const logged = () =>
      logger.lines.filter((l) => /before the session cookie could be sent/.test(l.message));
    const deadline = Date.now() + 5_000;
    while (logged().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(logged()).toHaveLength(1);
    expect(logged()[0].level).toBe('warn');
    expect((await request(url).get('/take-held/last').expect(200)).body).toEqual({
      outcome: 'SessionResponseStartedError',
    });
    // The copy under the new key is gone: the store holds what it held before (less a session signed out).
    expect(await store.sessions()).toBe(before - (ends ? 1 : 0));
    return { cookie, warning: logged()[0].message };
  }

  it('a sign-in: the session stays under the key the browser keeps, without the values the request set', async () => {
    const { cookie, warning } = await takenWhileFlooding('/take-held/login');
    expect(await read(cookie)).toEqual(stored({ name: 'first', color: 'blue' }));
    expect(warning).toMatch(/regenerate\(\) was undone after its move, the session keeps its key/);
    expect(warning).not.toContain(cookie.split('=')[1]);
  });

  it('a sign-in that drops a value: the removal applies under the kept key', async () => {
    const { cookie } = await takenWhileFlooding('/take-held/login-remove');
    expect(await read(cookie)).toEqual(stored({ name: 'first' }));
  });

  it('a sign-out (clear() and regenerate()): nothing comes back, the visitor is signed out', async () => {
    const { cookie } = await takenWhileFlooding('/take-held/sign-out', { ends: true });
    expect(await read(cookie)).toEqual(stored({}));
  });

  it('a re-authentication of a bound session: the session is ended (signed out and unlisted: a revocation meanwhile could not be told)', async () => {
    const { cookie, warning } = await takenWhileFlooding('/take-held/reauth', {
      start: '/take-held/sign-in',
      ends: true,
    });
    expect(await read(cookie)).toEqual(stored({}));
    expect((await request(url).get('/take-held/listed').expect(200)).body).toEqual({ count: 0 });
    expect(warning).toMatch(/the session, bound to a user, was ended/);
  });

  it('a re-authentication of a bound session revoked between the take and the write-back: nothing of it comes back', async () => {
    const { cookie } = await takenWhileFlooding('/take-held/reauth', {
      start: '/take-held/sign-in',
      meanwhile: '/take-held/revoke-all',
      after: true,
      ends: true,
    });
    expect(await read(cookie)).toEqual(stored({}));
    expect((await request(url).get('/take-held/listed').expect(200)).body).toEqual({ count: 0 });
  });

  if (session?.lock === undefined)
    it('a value another request wrote before the take stays (the take found it)', async () => {
      const { cookie } = await takenWhileFlooding('/take-held/login', { meanwhile: '/take-held/rename' });
      expect(await read(cookie)).toEqual(stored({ name: 'renamed', color: 'blue' }));
    });
});
