import { Controller, Get, Module, Param, Post, Res, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import compression from 'compression';
import type { Response } from 'express';
import request from 'supertest';
import {
  ManualClock,
  MemorySessionStore,
  Session,
  SessionAccessor,
  SessionModule,
  UserSessions,
  type EndedSessionMark,
  type SessionCommitLimits,
  type SessionData,
  type SessionChanges,
  type SessionModuleOptions,
} from 'nest-session-state';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair, findSetCookie, setCookies } from '../support/cookie-jar.js';
import { BIG, flood, getFlood } from '../support/flood-response.js';
import { OneShotGate } from '../support/one-shot-gate.js';
import { createPlatformApp } from '../support/platform/test-platform.js';

const COOKIE = '.Nest.Session';

/**
 * `res.writeHead()` and `res.flushHeaders()` used to send the head at once: the commit that runs
 * before the first byte then found the headers gone, stored the session under a key no cookie
 * carried, and (after `regenerate()`) deleted the key the browser still held. Now they wait for the
 * commit like `write` and `end`; where the head is already out when the session is first used, the
 * change is refused with SessionResponseStartedError, logged at warn.
 */
@Controller('head')
class HeadController {
  constructor(private readonly sessions: SessionAccessor) {}

  @Get('write-head')
  writeHead(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'write-head');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  }

  @Get('write-head-array')
  writeHeadArray(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'write-head-array');
    res.writeHead(200, 'Fine', ['content-type', 'text/plain', 'x-twice', 'a', 'x-twice', 'b']);
    res.end('ok');
  }

  /** The app's own Set-Cookie in writeHead and the session's both reach the browser. */
  @Get('write-head-cookie')
  writeHeadCookie(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'write-head-cookie');
    res.writeHead(200, { 'set-cookie': 'app=1; Path=/' }).end('ok');
  }

  /** A head written first, the value set after it in the same turn. */
  @Get('write-head-then-set')
  writeHeadThenSet(@Session() session: Session, @Res() res: Response) {
    res.writeHead(201);
    session.setString('name', 'after-write-head');
    res.end('ok');
  }

  @Get('write-head-redirect')
  writeHeadRedirect(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'redirected');
    res.writeHead(302, { location: '/head/read' });
    res.end();
  }

  @Post('login')
  login(@Session() session: Session, @Res() res: Response) {
    session.regenerate();
    session.setString('user', 'ada');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('logged in');
  }

  @Get('flush-headers')
  async flushHeaders(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'flush-headers');
    res.setHeader('content-type', 'text/plain');
    res.flushHeaders();
    await new Promise((resolve) => setTimeout(resolve, 10));
    res.end('streamed');
  }

  /** The head went out before the session was first used: a new session cannot start any more. */
  @Get('flushed-before-use')
  async flushedBeforeUse(@Res() res: Response) {
    res.flushHeaders();
    const session = await this.sessions.load();
    try {
      session.setString('name', 'never');
      res.end('no error');
    } catch (error) {
      res.end((error as Error).name);
    }
  }

  @Get('second-head')
  secondHead(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'second-head');
    res.writeHead(200);
    try {
      res.writeHead(500);
      res.end('no error');
    } catch (error) {
      res.end((error as { code?: string }).code);
    }
  }

  @Get('read')
  read(@Session() session: Session) {
    return { name: session.getString('name') ?? null, user: session.getString('user') ?? null };
  }
}

/** Commits in a later turn, as a networked store does (the hold then waits on a promise). */
class SlowStore extends MemorySessionStore {
  override async commit(key: string, changes: SessionChanges, idle: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return super.commit(key, changes, idle);
  }
}

async function start(
  options: SessionModuleOptions,
  logger: CaptureLogger,
  withCompression = false,
): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [HeadController] })
  class HeadAppModule {}
  const ref = await Test.createTestingModule({ imports: [HeadAppModule] }).compile();
  const app = createPlatformApp(ref, { logger });
  if (withCompression) app.use(compression({ threshold: 0 }));
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

describe.each([
  ['the in-process store', () => ({}), false],
  ['a store that commits in a later turn', () => ({ store: new SlowStore() }), false],
  ['compression (own writeHead on the response)', () => ({}), true],
] as const)('writeHead and flushHeaders wait for the session commit (%s)', (_name, options, zip) => {
  let app: INestApplication;
  let url: string;
  const logger = new CaptureLogger();
  beforeAll(async () => {
    ({ app, url } = await start(options(), logger, zip));
  });
  afterAll(() => app.close());

  const readWith = async (cookie: string) =>
    (await request(url).get('/head/read').set('Cookie', cookie).expect(200)).body as {
      name: string | null;
      user: string | null;
    };

  it.each([
    ['/head/write-head', 200, 'write-head'],
    ['/head/write-head-array', 200, 'write-head-array'],
    ['/head/write-head-then-set', 201, 'after-write-head'],
    ['/head/flush-headers', 200, 'flush-headers'],
  ])(
    '%s: the new session cookie is sent with the head and the value is stored',
    async (path, status, name) => {
      const res = await request(url).get(path).expect(status);
      expect(res.headers['cache-control']).toBe('no-cache, no-store');
      expect((await readWith(cookiePair(res, COOKIE))).name).toBe(name);
    },
  );

  it('writeHead with a reason and repeated headers keeps them', async () => {
    const res = await request(url).get('/head/write-head-array').expect(200);
    expect((res as unknown as { res: { statusMessage: string } }).res.statusMessage).toBe('Fine');
    expect(res.headers['x-twice']).toBe('a, b');
  });

  it("the app's own Set-Cookie in writeHead and the session cookie both arrive", async () => {
    const res = await request(url).get('/head/write-head-cookie').expect(200, 'ok');
    expect(findSetCookie(res, 'app')).toBe('app=1; Path=/');
    expect((await readWith(cookiePair(res, COOKIE))).name).toBe('write-head-cookie');
  });

  it('writeHead(302, { location }) keeps status and location, and sends the cookie', async () => {
    const res = await request(url).get('/head/write-head-redirect').expect(302);
    expect(res.headers.location).toBe('/head/read');
    expect((await readWith(cookiePair(res, COOKIE))).name).toBe('redirected');
  });

  it('regenerate() then writeHead: the browser gets the new key, the old one is gone only then', async () => {
    const first = await request(url).get('/head/write-head').expect(200);
    const oldCookie = cookiePair(first, COOKIE);
    const login = await request(url).post('/head/login').set('Cookie', oldCookie).expect(200, 'logged in');
    const newCookie = cookiePair(login, COOKIE);
    expect(newCookie).not.toBe(oldCookie);
    expect(await readWith(newCookie)).toEqual({ name: 'write-head', user: 'ada' });
    expect(await readWith(oldCookie)).toEqual({ name: null, user: null });
  });

  it('a second writeHead throws as Node does (ERR_HTTP_HEADERS_SENT)', async () => {
    const res = await request(url).get('/head/second-head').expect(200, 'ERR_HTTP_HEADERS_SENT');
    expect((await readWith(cookiePair(res, COOKIE))).name).toBe('second-head');
  });

  it('session first used after flushHeaders: SessionResponseStartedError at set, logged at warn, nothing stored', async () => {
    const res = await request(url).get('/head/flushed-before-use').expect(200, 'SessionResponseStartedError');
    expect(setCookies(res)).toEqual([]);
    const warned = logger.lines.filter((l) => l.level === 'warn' && /can no longer be saved/.test(l.message));
    expect(warned.length).toBeGreaterThan(0);
  });
});

/** Routes that flood their response past the hold (`new`, `login`) and plain ones to set and read. */
@Controller('flood')
class FloodController {
  @Get('new')
  newSession(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'flood');
    flood(res);
  }

  @Get('login')
  login(@Session() session: Session, @Res() res: Response) {
    session.regenerate();
    session.setString('user', 'ada');
    flood(res);
  }

  @Get('start')
  start(@Session() session: Session) {
    session.setString('name', 'first');
    return { ok: true };
  }

  @Get('rename')
  rename(@Session() session: Session) {
    session.setString('name', 'renamed');
    return { ok: true };
  }

  /** A sign-in that also drops a value. */
  @Get('login-remove')
  loginRemove(@Session() session: Session, @Res() res: Response) {
    session.remove('name');
    session.regenerate();
    session.setString('user', 'ada');
    flood(res);
  }

  /** A sign-out: clear() and regenerate(). */
  @Get('sign-out')
  signOut(@Session() session: Session, @Res() res: Response) {
    session.clear();
    session.regenerate();
    flood(res);
  }

  @Get('relogin')
  relogin(@Session() session: Session) {
    session.regenerate();
    session.setString('user', 'bob');
    return { ok: true };
  }

  @Get('logout')
  logout(@Session() session: Session) {
    session.abandon();
    return { ok: true };
  }

  @Get('read')
  read(@Session() session: Session) {
    return { name: session.getString('name') ?? null, user: session.getString('user') ?? null };
  }
}

/** An app of FloodController over `options`, logging to `logger`. */
async function startFloodApp(
  options: SessionModuleOptions,
  logger: CaptureLogger,
  controllers: (new (...args: never[]) => unknown)[] = [FloodController],
): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers })
  class FloodAppModule {}
  const ref = await Test.createTestingModule({ imports: [FloodAppModule] }).compile();
  const app = createPlatformApp(ref, { logger });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

describe('a stream that outgrows the hold before a new key is committed', () => {
  /** Commits slowly, so a flood outgrows the hold first; remembers which keys hold data. */
  class CountingSlowStore extends MemorySessionStore {
    readonly stored = new Set<string>();
    override async commit(key: string, changes: SessionChanges, idle: number): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve, 150));
      this.stored.add(key);
      return super.commit(key, changes, idle);
    }
    override async remove(key: string, mark?: EndedSessionMark): Promise<void> {
      this.stored.delete(key);
      return super.remove(key, mark);
    }
  }

  const store = new CountingSlowStore();
  const logger = new CaptureLogger();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startFloodApp({ store }, logger));
  });
  afterAll(() => app.close());

  const get = (path: string, cookie = '') => getFlood(url, path, cookie);

  /** Waits until the commit that ran on after the response logged its warning. */
  async function warned(count: number): Promise<void> {
    const deadline = Date.now() + 5_000;
    const lines = () =>
      logger.lines.filter(
        (l) => l.level === 'warn' && /before the session cookie could be sent/.test(l.message),
      );
    while (lines().length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(lines()).toHaveLength(count);
  }

  it('a new session: nothing is left stored under a key whose cookie was never sent; a warning says why', async () => {
    const res = await get('/flood/new');
    expect((res.body as Buffer).length).toBe(BIG.length);
    expect(findSetCookie(res, COOKIE)).toBeUndefined();
    await warned(1);
    expect([...store.stored]).toEqual([]);
  });

  it('regenerate(): the key the browser holds is not deleted, and keeps its data without the values the request set (no sign-in under a pre-sign-in key)', async () => {
    const first = await request(url).get('/flood/start').expect(200);
    const cookie = cookiePair(first, COOKIE);
    expect(store.stored.size).toBe(1);
    const res = await get('/flood/login', cookie);
    expect((res.body as Buffer).length).toBe(BIG.length);
    expect(findSetCookie(res, COOKIE)).toBeUndefined();
    await warned(2);
    expect(store.stored.size).toBe(1);
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'first',
      user: null,
    });
  });
});

/** Holds the next commit until `release()`; remembers which keys hold data. */
class HeldCommitStore extends MemorySessionStore {
  readonly stored = new Set<string>();
  private readonly gate = new OneShotGate();

  /** Arms the hold; resolves `reached` once a commit waits at it. */
  holdNext(): { reached: Promise<void>; release: () => void } {
    return this.gate.arm();
  }

  override async commit(
    key: string,
    changes: SessionChanges,
    idle: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    await this.gate.pass();
    await super.commit(key, changes, idle, limits);
    this.stored.add(key);
  }
  override async remove(key: string, mark?: EndedSessionMark): Promise<void> {
    this.stored.delete(key);
    return super.remove(key, mark);
  }
}

describe('a stream that outgrows the hold after regenerate() under session.lock, whose lock was lost meanwhile', () => {
  const clock = new ManualClock(Date.now());

  const store = new HeldCommitStore({ clock });
  const logger = new CaptureLogger();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startFloodApp(
      { store, session: { lock: { ttl: 1_000, acquireTimeout: 2_000 } } },
      logger,
    ));
  });
  afterAll(() => app.close());

  it("the values go back under the kept key only while the lock is the request's: the write made after it stays", async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    expect(store.stored.size).toBe(1);
    const hold = store.holdNext();
    const login = getFlood(url, '/flood/login', cookie).then((res) => res);
    await hold.reached; // the new key's commit waits; the flood has taken the head out without its cookie
    clock.advance(5_000); // the login's lock expired on the store's clock (no renewal reached it)
    await request(url).get('/flood/rename').set('Cookie', cookie).expect(200);
    hold.release();
    const res = await login;
    expect((res.body as Buffer).length).toBe(BIG.length);
    expect(findSetCookie(res, COOKIE)).toBeUndefined();
    const deadline = Date.now() + 5_000;
    const undone = () =>
      logger.lines.find(
        (l) => l.level === 'warn' && /before the session cookie could be sent/.test(l.message),
      );
    while (!undone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // The rename, answered 200 under the lock the login lost, is not overwritten by the login's values.
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'renamed',
      user: null,
    });
    expect(undone()?.message).toMatch(/without the values this request set/);
    expect(store.stored.size).toBe(1); // the unsent key is removed
  });
});

describe('a stream that outgrows the hold after regenerate(), while another request changes the kept session', () => {
  const store = new HeldCommitStore();
  const logger = new CaptureLogger();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startFloodApp({ store }, logger));
  });
  afterAll(() => app.close());

  /**
   * Signs in (or out: `login`) with a flood whose next commit (under the new key; for a sign-out, which writes nothing
   * there, the undo's under the kept key) waits until `meanwhile` (sent with the old cookie) answered; returns
   * the warning that the undo logged, and the answer `meanwhile` got.
   */
  async function loginAround(
    cookie: string,
    meanwhile: string,
    login = '/flood/login',
  ): Promise<{ warning: string; other: request.Response }> {
    const hold = store.holdNext();
    const flooded = getFlood(url, login, cookie).then((res) => res);
    await hold.reached;
    const other = await request(url).get(meanwhile).set('Cookie', cookie).expect(200);
    hold.release();
    const res = await flooded;
    expect((res.body as Buffer).length).toBe(BIG.length);
    expect(findSetCookie(res, COOKIE)).toBeUndefined();
    const deadline = Date.now() + 5_000;
    const undone = () =>
      logger.lines.filter((l) => /before the session cookie could be sent/.test(l.message));
    while (undone().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(undone()).toHaveLength(1);
    const warning = undone()[0].message;
    logger.lines.length = 0;
    return { warning, other };
  }

  it('none of the values the request set go under the kept key; a value another request wrote meanwhile stays', async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    await loginAround(cookie, '/flood/rename');
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'renamed',
      user: null,
    });
  });

  it('a session signed out meanwhile stays signed out: the undo does not bring it back', async () => {
    const earlier = new Set(store.stored);
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    await loginAround(cookie, '/flood/logout');
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: null,
      user: null,
    });
    // Nothing is left under either key (the commits it refused count as made in `stored`: ask the store).
    const left = [...store.stored].filter(
      (key) => !earlier.has(key) && store.loadNow(key, 60_000) !== undefined,
    );
    expect(left).toEqual([]);
  });

  it('a sign-out (clear() and regenerate()) undone: the clear applies under the kept key, the visitor is signed out', async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    await loginAround(cookie, '/flood/read', '/flood/sign-out');
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: null,
      user: null,
    });
  });

  it('a sign-out undone while another request moved the session: not brought back under the old key; the warning says nothing of the request was kept', async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    const { warning, other } = await loginAround(cookie, '/flood/relogin', '/flood/sign-out');
    expect(warning).toMatch(
      /nothing of this request was kept \(another request moved the session meanwhile\)/,
    );
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: null,
      user: null,
    });
    const moved = cookiePair(other, COOKIE);
    expect((await request(url).get('/flood/read').set('Cookie', moved).expect(200)).body).toEqual({
      name: 'first',
      user: 'bob',
    });
  });
});

/** Fails on demand: the next take's reply is lost (it applied), or the n-th commit from now fails (applying nothing). */
class FailingFloodStore extends HeldCommitStore {
  loseNextTakeReply = false;
  commitDelayMs = 0;
  failCommitNo = 0;

  override async take(key: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    const taken = await super.take(key, mark);
    if (this.loseNextTakeReply) {
      this.loseNextTakeReply = false;
      throw new Error('the reply of the take was lost');
    }
    return taken;
  }

  override async commit(
    key: string,
    changes: SessionChanges,
    idle: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    const failing = this.failCommitNo > 0 && --this.failCommitNo === 0;
    if (this.commitDelayMs) await new Promise((resolve) => setTimeout(resolve, this.commitDelayMs));
    if (failing) throw new Error('the store is down');
    await super.commit(key, changes, idle, limits);
  }

  /** Keys stored since `before` that hold a session now. */
  copiesSince(before: ReadonlySet<string>): string[] {
    return [...this.stored].filter((key) => !before.has(key) && this.loadNow(key, 60_000) !== undefined);
  }
}

const failingFloodStore = new FailingFloodStore();

@Controller('failing-flood')
class FailingFloodController {
  constructor(private readonly users: UserSessions) {}

  /** A sign-in whose explicit commit failed (its take applied, the reply lost), tried again at the end, flooding. */
  @Get('login-retried')
  async loginRetried(@Session() session: Session, @Res() res: Response) {
    session.regenerate();
    session.setString('user', 'ada');
    failingFloodStore.loseNextTakeReply = true;
    await session.commit().catch(() => undefined);
    failingFloodStore.commitDelayMs = 150;
    flood(res);
  }

  /** A sign-in whose move's write lands and whose undo's write under the kept key fails (a sign-out's clear). */
  @Get('sign-out-write-back-fails')
  signOutWriteBackFails(@Session() session: Session, @Res() res: Response) {
    session.remove('name');
    session.regenerate();
    session.setString('user', 'ada');
    failingFloodStore.commitDelayMs = 150;
    failingFloodStore.failCommitNo = 2;
    flood(res);
  }

  @Get('sign-in')
  async signIn(@Session() session: Session) {
    session.setString('name', 'first');
    await this.users.bind(session, 'ada');
    return { ok: true };
  }

  /**
   * A re-authentication (regenerate()) whose explicit commit's take landed with its reply lost; the user's sessions
   * are revoked meanwhile (a password reset elsewhere); then the response outgrows the hold.
   */
  @Get('reauth-revoked')
  async reauthRevoked(@Session() session: Session, @Res() res: Response) {
    session.regenerate();
    session.setString('reauth', 'yes');
    failingFloodStore.loseNextTakeReply = true;
    await session.commit().catch(() => undefined);
    await this.users.revokeAll('ada');
    failingFloodStore.commitDelayMs = 150;
    flood(res);
  }

  /** A sign-in by bind() that also drops a value, on a session whose id nobody read (bind creates it). */
  @Get('bind-remove')
  async bindRemove(@Session() session: Session, @Res() res: Response) {
    session.remove('name');
    session.regenerate();
    failingFloodStore.commitDelayMs = 150;
    const bound = this.users.bind(session, 'ada').catch(() => undefined);
    flood(res);
    await bound;
  }

  /** bob signs in without regenerate() (the API allows it): the session keeps its key. */
  @Get('bind-bob')
  async bindBob(@Session() session: Session) {
    await this.users.bind(session, 'bob');
    return { ok: true };
  }

  @Get('listed/:user')
  async listedOf(@Param('user') user: string) {
    return { count: (await this.users.list(user)).length };
  }

  /** A sign-in by UserSessions.bind() while the response outgrows the hold. */
  @Get('bind')
  async bind(@Session() session: Session, @Res() res: Response) {
    session.regenerate();
    const bound = this.users.bind(session, 'ada').then(
      () => 'bound',
      (error: Error) => error.name,
    );
    flood(res);
    this.lastBind = await bound;
  }

  lastBind = '';

  @Get('last-bind')
  lastBindOutcome() {
    return { outcome: this.lastBind };
  }

  @Get('read')
  read(@Session() session: Session) {
    return {
      name: session.getString('name') ?? null,
      user: session.getString('user') ?? null,
      boundTo: this.users.userOf(session) ?? null,
    };
  }

  @Get('listed')
  async listed() {
    return { count: (await this.users.list('ada')).length };
  }
}

describe('an undone regenerate() after other failures of the request', () => {
  const store = failingFloodStore;
  const logger = new CaptureLogger();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startFloodApp({ store }, logger, [FloodController, FailingFloodController]));
  });
  afterAll(() => app.close());
  beforeEach(() => {
    store.commitDelayMs = 0;
    store.failCommitNo = 0;
    store.loseNextTakeReply = false;
    logger.lines.length = 0;
  });

  const read = async (cookie: string) =>
    (await request(url).get('/failing-flood/read').set('Cookie', cookie).expect(200)).body as Record<
      string,
      unknown
    >;

  /**
   * Sends `path` with a stored session's cookie; waits for the undo's warning (or `pattern`). Returns the cookie and
   * the keys committed before `path` (the kept key among them).
   */
  async function flooded(
    path: string,
    pattern = /before the session cookie could be sent/,
    start = '/flood/start',
    cutOff = false,
  ): Promise<{ cookie: string; before: Set<string> }> {
    const cookie = cookiePair(await request(url).get(start).expect(200), COOKIE);
    const before = new Set(store.stored);
    if (cutOff) {
      // The commit failed after the head left: the response is cut off before its end.
      await expect(getFlood(url, path, cookie)).rejects.toThrow('aborted');
    } else {
      const res = await getFlood(url, path, cookie);
      expect((res.body as Buffer).length).toBe(BIG.length);
      expect(findSetCookie(res, COOKIE)).toBeUndefined();
    }
    const deadline = Date.now() + 5_000;
    while (!logger.lines.some((l) => pattern.test(l.message)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(logger.lines.some((l) => pattern.test(l.message))).toBe(true);
    return { cookie, before };
  }

  it("a move tried again after its own take landed (the reply lost): the session's values go back to the kept key, not the ones the request set", async () => {
    const { cookie, before } = await flooded('/failing-flood/login-retried');
    expect(await read(cookie)).toEqual({ name: 'first', user: null, boundTo: null });
    await new Promise((resolve) => setTimeout(resolve, 50)); // the first try's copy goes in the background
    expect(store.copiesSince(before)).toEqual([]);
  });

  it('the write under the kept key fails: the copy under the unsent key is deleted all the same, the kept key is as it was', async () => {
    const { cookie, before } = await flooded(
      '/failing-flood/sign-out-write-back-fails',
      /Session commit failed/,
      '/flood/start',
      true,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.copiesSince(before)).toEqual([]);
    expect(await read(cookie)).toEqual({ name: 'first', user: null, boundTo: null });
  });

  it('a bind() under a flood: the kept key is not bound (a sign-in under a pre-sign-in key), and nothing is listed', async () => {
    const { cookie } = await flooded('/failing-flood/bind');
    expect(await read(cookie)).toEqual({ name: 'first', user: null, boundTo: null });
    expect((await request(url).get('/failing-flood/listed').expect(200)).body).toEqual({ count: 0 });
    expect((await request(url).get('/failing-flood/last-bind').expect(200)).body).toEqual({
      outcome: 'SessionResponseStartedError',
    });
  });

  it('a re-authentication undone after its own take landed, the user signed out everywhere meanwhile: the kept key is not signed in again (nor unlisted)', async () => {
    const { cookie } = await flooded(
      '/failing-flood/reauth-revoked',
      /before the session cookie could be sent/,
      '/failing-flood/sign-in',
    );
    expect(await read(cookie)).toEqual({ name: 'first', user: null, boundTo: null });
    expect((await request(url).get('/failing-flood/listed').expect(200)).body).toEqual({ count: 0 });
  });

  it('a bind() with a removal undone while another request bound the kept key in place: that binding stays listed (the undo does not write the id the request created over it)', async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    const hold = store.holdNext();
    const flooding = getFlood(url, '/failing-flood/bind-remove', cookie).then((res) => res);
    await hold.reached; // the move's write under the new key waits; the head has left without its cookie
    await request(url).get('/failing-flood/bind-bob').set('Cookie', cookie).expect(200);
    hold.release();
    expect(findSetCookie(await flooding, COOKIE)).toBeUndefined();
    const deadline = Date.now() + 5_000;
    const undone = () => logger.lines.some((l) => /before the session cookie could be sent/.test(l.message));
    while (!undone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(undone()).toBe(true);
    expect(await read(cookie)).toEqual({ name: null, user: null, boundTo: 'bob' });
    expect((await request(url).get('/failing-flood/listed/bob').expect(200)).body).toEqual({ count: 1 });
    expect((await request(url).get('/failing-flood/listed/ada').expect(200)).body).toEqual({ count: 0 });
  });

  it('a bind() with a removal, on a session whose id it creates: the removal applies under the kept key, the bind does not', async () => {
    const { cookie } = await flooded('/failing-flood/bind-remove');
    expect(await read(cookie)).toEqual({ name: null, user: null, boundTo: null });
    expect((await request(url).get('/failing-flood/listed').expect(200)).body).toEqual({ count: 0 });
  });
});

/**
 * A store that writes whole records (writesDeltas false), as its contract allows: each commit stores the session as
 * the request holds it (`snapshot()`), honouring the guard of bound sessions.
 */
class WholeRecordStore extends MemorySessionStore {
  override readonly writesDeltas = false as unknown as true;
  /** The next remove fails (an outage), applying nothing. */
  failNextRemove = false;

  override async remove(key: string, mark?: EndedSessionMark): Promise<void> {
    if (this.failNextRemove) {
      this.failNextRemove = false;
      throw new Error('the store is down');
    }
    return super.remove(key, mark);
  }

  override async commit(
    key: string,
    changes: SessionChanges,
    idle: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const whole: SessionChanges = {
      cleared: true,
      clearedBoundSessionId: changes.clearedBoundSessionId,
      set: changes.snapshot(),
      removed: new Set(),
      ofStoredSession: changes.ofStoredSession,
      lockToken: changes.lockToken,
      snapshot: () => changes.snapshot(),
    };
    return super.commit(key, whole, idle, limits);
  }
}

const wholeRecordStore = new WholeRecordStore();

@Controller('whole-record')
class WholeRecordFloodController {
  /** A sign-out and a sign-in in one (clear, regenerate, a set), committed by the app while the response floods. */
  @Get('switch-user')
  switchUser(@Session() session: Session, @Res() res: Response) {
    session.clear();
    session.regenerate();
    session.setString('user', 'ada');
    wholeRecordStore.failNextRemove = true;
    void session.commit().catch(() => undefined);
    flood(res);
  }
}

describe('an undone regenerate() on a store that writes whole records', () => {
  const logger = new CaptureLogger();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startFloodApp({ store: wholeRecordStore }, logger, [
      FloodController,
      WholeRecordFloodController,
    ]));
  });
  afterAll(() => app.close());

  /** Floods `path` with a stored session's cookie; resolves once the undo was logged. */
  async function undone(path: string, cutOff = false): Promise<string> {
    logger.lines.length = 0;
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    if (cutOff) {
      // The undo failed after the head left: the response is cut off before its end.
      await expect(getFlood(url, path, cookie)).rejects.toThrow('aborted');
    } else {
      expect(findSetCookie(await getFlood(url, path, cookie), COOKIE)).toBeUndefined();
    }
    const deadline = Date.now() + 5_000;
    const logged = () => logger.lines.some((l) => /before the session cookie could be sent/.test(l.message));
    while (!logged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(logged()).toBe(true);
    return cookie;
  }

  it('a sign-in that drops a value: the value the request set does not reach the kept key (the record it would write holds it), and the removal waits for a commit that is not undone', async () => {
    const cookie = await undone('/flood/login-remove');
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'first',
      user: null,
    });
  });

  it('a sign-out (clear() and regenerate()): the kept key is deleted', async () => {
    const cookie = await undone('/flood/sign-out');
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: null,
      user: null,
    });
  });

  it("the undo's delete fails (an outage): not tried again at the end of the request, which would write the record with the value the request set", async () => {
    const cookie = await undone('/whole-record/switch-user', true);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the end of the request
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'first',
      user: null,
    });
  });
});
