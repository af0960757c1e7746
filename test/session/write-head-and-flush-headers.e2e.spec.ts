import { Controller, Get, Module, Post, Res, type INestApplication } from '@nestjs/common';
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
  type EndedSessionMark,
  type SessionChanges,
  type SessionModuleOptions,
} from 'nest-session-state';
import { CaptureLogger } from '../support/capture-logger.js';
import { cookiePair, findSetCookie, setCookies } from '../support/cookie-jar.js';
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

const BIG = Buffer.alloc(2 * 1024 * 1024, 'x');
const flood = (res: Response) => {
  for (let i = 0; i < 32; i++) res.write(BIG.subarray(i * 65536, (i + 1) * 65536)); // ignores false
  res.end();
};

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
): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [FloodController] })
  class FloodAppModule {}
  const ref = await Test.createTestingModule({ imports: [FloodAppModule] }).compile();
  const app = createPlatformApp(ref, { logger });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

/** GET `path` with `cookie`, its body read whole as a Buffer. */
const getFlood = (url: string, path: string, cookie = '') =>
  request(url)
    .get(path)
    .set('Cookie', cookie)
    .buffer(true)
    .parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (chunk: Buffer) => chunks.push(chunk));
      r.on('end', () => done(null, Buffer.concat(chunks)));
    });

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

  it('regenerate(): the key the browser holds is not deleted, and keeps the data', async () => {
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
      user: 'ada',
    });
  });
});

/** Holds the next commit until `release()`; remembers which keys hold data. */
class HeldCommitStore extends MemorySessionStore {
  readonly stored = new Set<string>();
  private held: { reached: () => void; until: Promise<void> } | undefined;

  /** Arms the hold; resolves `reached` once a commit waits at it. */
  holdNext(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const waiting = new Promise<void>((resolve) => (reached = resolve));
    this.held = { reached, until: new Promise<void>((resolve) => (release = resolve)) };
    return { reached: waiting, release };
  }

  override async commit(key: string, changes: SessionChanges, idle: number): Promise<void> {
    const held = this.held;
    this.held = undefined;
    if (held) {
      held.reached();
      await held.until;
    }
    await super.commit(key, changes, idle);
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
    expect(undone()?.message).toMatch(/without this request's values \(its session lock was lost\)/);
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
   * Signs in with a flood whose new key's commit waits until `meanwhile` (sent with the old cookie) answered; returns
   * the warning that the undo logged, and the answer `meanwhile` got.
   */
  async function loginAround(
    cookie: string,
    meanwhile: string,
  ): Promise<{ warning: string; other: request.Response }> {
    const hold = store.holdNext();
    const login = getFlood(url, '/flood/login', cookie).then((res) => res);
    await hold.reached;
    const other = await request(url).get(meanwhile).set('Cookie', cookie).expect(200);
    hold.release();
    const res = await login;
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

  it("only the request's own changes go back under the kept key: a value another request wrote meanwhile stays", async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    await loginAround(cookie, '/flood/rename');
    expect((await request(url).get('/flood/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'renamed',
      user: 'ada',
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

  it('a session another request moved meanwhile is not brought back under the old key; the warning says the values were not kept', async () => {
    const cookie = cookiePair(await request(url).get('/flood/start').expect(200), COOKIE);
    const { warning, other } = await loginAround(cookie, '/flood/relogin');
    expect(warning).toMatch(/without this request's values \(another request moved the session meanwhile\)/);
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
