import 'reflect-metadata';
import {
  Catch,
  Controller,
  Get,
  HttpException,
  Injectable,
  Module,
  Param,
  Res,
  ServiceUnavailableException,
  UseFilters,
  UseInterceptors,
  type ArgumentsHost,
  type ExceptionFilter,
  type INestApplication,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import * as api from 'nest-session-state';
import {
  MemorySessionStore,
  Session,
  SessionModule,
  SessionStateError,
  SessionStateInterceptor,
  SessionAccessor,
  SessionUnavailableError,
  TempData,
  TempDataAccessor,
  type EndedSessionMark,
  type SessionChanges,
  type SessionCommitLimits,
  type SessionData,
  type SessionModuleOptions,
  type TempDataDictionary,
} from 'nest-session-state';
import {
  createPlatformApp,
  rawResponse,
  sendBody,
  type PlatformResponse,
} from '../support/platform/test-platform.js';

const REPLY = {
  statusCode: 503,
  message: 'Session state is temporarily unavailable.',
  error: 'Service Unavailable',
  code: 'SESSION_UNAVAILABLE',
};

/** Every class the package exports whose name ends in Error or Exception. */
type ErrorClass = abstract new (...args: never[]) => Error;
const errorClasses = (Object.entries(api) as [string, unknown][]).filter(
  (entry): entry is [string, ErrorClass] =>
    /(Error|Exception)$/.test(entry[0]) && typeof entry[1] === 'function',
);

describe('one error family', () => {
  it('every exported error is a SessionStateError with name = class name and a stable, unique code', () => {
    expect(errorClasses.map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'SessionStateError',
        'SessionUnavailableError',
        'SessionResponseStartedError',
        'TempDataResponseStartedError',
        'TempDataTooLargeError',
        'SessionLimitExceededError',
        'SessionConfigurationError',
        'KeyRingConfigurationError',
        'RedisConfigurationError',
        'RedisOperationError',
      ]),
    );
    const codes = new Map<string, string>();
    for (const [name, errorClass] of errorClasses) {
      if (name === 'SessionStateError' || name === 'ResponseStartedError') continue; // abstract bases
      const error = construct(name, errorClass);
      expect(error).toBeInstanceOf(SessionStateError);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe(name);
      const code = (error as { code?: unknown }).code;
      expect(typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code)).toBe(true);
      expect(codes.get(code as string)).toBeUndefined();
      codes.set(code as string, name);
    }
  });

  it("instanceof SessionStateError is false for other errors, Nest's own exceptions included; subclasses keep plain instanceof", () => {
    expect(new Error('x')).not.toBeInstanceOf(SessionStateError);
    expect(new ServiceUnavailableException()).not.toBeInstanceOf(SessionStateError);
    expect((null as unknown as object) instanceof SessionStateError).toBe(false);
    const unavailable = new SessionUnavailableError('load');
    expect(unavailable).toBeInstanceOf(HttpException);
    expect(unavailable.getStatus()).toBe(503);
    expect(new api.SessionNotLoadedError()).not.toBeInstanceOf(SessionUnavailableError);
    expect(new api.TempDataTooLargeError('k', 2, 1).getStatus()).toBe(413);
    expect(new api.SessionLimitExceededError('maxKeys', 'Too many keys.').getStatus()).toBe(413);
  });
});

/** Arguments that build each error class (their constructors differ). */
function construct(name: string, errorClass: ErrorClass): Error {
  const args: Record<string, unknown[]> = {
    SessionUnavailableError: ['load'],
    SessionLockTimeoutError: [10],
    SessionRequiresHttpError: ['@Session()', 'ws'],
    TempDataTooLargeError: ['Message', 9000, 8192],
    SessionLimitExceededError: ['maxKeys', 'Too many keys.'],
    RedisOperationError: ['failed', 'get'],
    TempDataFormatError: ['bad'],
    CacheEntryTooLargeError: [301, 300],
  };
  const Concrete = errorClass as unknown as new (...args: unknown[]) => Error;
  return new Concrete(...(args[name] ?? ['message']));
}

class DownStore extends MemorySessionStore {
  override load(_key: string, _idle: number): Promise<SessionData | undefined> {
    return Promise.reject(new Error('store is down'));
  }
  override commit(_key: string, _changes: SessionChanges, _idle: number): Promise<void> {
    return Promise.reject(new Error('store is down'));
  }
}

/** Commits fail after 50 ms: the interceptor's commit, started first, fails first. */
class SlowlyDownStore extends MemorySessionStore {
  /** Commits tried. */
  commits = 0;
  override async commit(_key: string, _changes: SessionChanges, _idle: number): Promise<void> {
    this.commits++;
    await new Promise((resolve) => setTimeout(resolve, 50));
    throw new Error('store is down');
  }
}

@Catch(SessionUnavailableError)
class SessionOutageFilter implements ExceptionFilter {
  catch(error: SessionUnavailableError, host: ArgumentsHost) {
    sendBody(host.switchToHttp().getResponse(), { outage: error.code, action: error.action }, 503);
  }
}

/**
 * regenerate()'s carry-over fails: the take answers a value another request committed meanwhile, and the
 * commit that carries it to the new key is refused (the store went down right after the take).
 */
class CarryOverFails extends MemorySessionStore {
  private failNext = false;
  override async take(key: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    const data = await super.take(key, mark);
    this.failNext = true;
    return new Map([...(data ?? []), ['concurrent', new Uint8Array([1])]]);
  }
  override commit(
    key: string,
    changes: SessionChanges,
    idle: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    if (!this.failNext) return super.commit(key, changes, idle, limits);
    this.failNext = false;
    return Promise.reject(new Error('store is down'));
  }
}

/** Answers a failed commit itself, with a TempData message of its own. */
@Catch(SessionUnavailableError)
@Injectable()
class FlashingOutageFilter implements ExceptionFilter {
  constructor(private readonly tempData: TempDataAccessor) {}
  async catch(error: SessionUnavailableError, host: ArgumentsHost) {
    (await this.tempData.load()).set('Error', 'try again');
    sendBody(host.switchToHttp().getResponse(), { outage: error.code }, 503);
  }
}

@Controller('errors')
class ErrorsController {
  constructor(
    private readonly sessions: SessionAccessor,
    private readonly tempDataAccessor: TempDataAccessor,
  ) {}

  @Get('session')
  session(@Session() session: Session) {
    return { keys: session.keys };
  }

  @Get('temp-data')
  tempData(@TempData() tempData: TempDataDictionary) {
    return { keys: tempData.keys() };
  }

  @Get('commit')
  commit(@Session() session: Session) {
    session.setString('name', 'x');
    return { ok: true };
  }

  @Get('filtered-commit')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(SessionOutageFilter)
  filteredCommit(@Session() session: Session) {
    session.setString('name', 'x');
    return { ok: true };
  }

  /** Answers itself with TempData in play: the interceptor commits, then the hold saves TempData and commits. */
  @Get('answered/:how')
  answered(
    @Session() session: Session,
    @TempData() tempData: TempDataDictionary,
    @Res() res: PlatformResponse,
    @Param('how') how: string,
  ) {
    session.setString('name', 'x');
    tempData.set('Message', 'saved');
    if (how === 'send') return sendBody(res, { ok: true });
    const raw = rawResponse(res);
    raw.writeHead(200, { 'content-type': 'text/plain' });
    raw.end('saved');
  }

  /**
   * Answers itself with a head that describes its own body (a compressed CSV download, cacheable, chunked with a
   * trailer) and headers of the app's middleware (CORS, its own): a failed commit replaces it with the JSON 503.
   */
  @Get('answered-download')
  answeredDownload(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('name', 'x');
    const raw = rawResponse(res);
    raw.setHeader('access-control-allow-origin', 'https://app.example');
    raw.writeHead(200, 'Report ready', {
      'content-type': 'text/csv',
      'content-encoding': 'gzip',
      'content-disposition': 'attachment; filename="report.csv"',
      'content-language': 'en',
      'cache-control': 'public, max-age=3600',
      'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT',
      'transfer-encoding': 'chunked',
      trailer: 'server-timing',
      'x-accel-redirect': '/protected/report.csv',
      'surrogate-control': 'max-age=3600',
      'x-app': 'kept',
    });
    raw.end('not,really,gzip');
  }

  /** Says its answer may be cached; the interceptor's commit fails and Nest's own filter answers the 503. */
  @Get('cacheable-commit')
  @UseInterceptors(SessionStateInterceptor)
  cacheableCommit(@Session() session: Session, @Res({ passthrough: true }) res: PlatformResponse) {
    // Express's res.header() and Fastify's reply.header() alike.
    (res as { header(name: string, value: string): unknown }).header('cache-control', 'public, max-age=3600');
    session.setString('name', 'x');
    return { ok: true };
  }

  /** Without the interceptor: TempData and the session are both saved at the hold. */
  @Get('accessor-commit')
  async accessorCommit() {
    (await this.tempDataAccessor.load()).set('Message', 'saved');
    (await this.sessions.load()).setString('name', 'x');
    return { ok: true };
  }

  /** A sign-in through the accessors (no interceptor): TempData and the session are saved at the hold. */
  @Get('sign-in')
  async signIn() {
    (await this.tempDataAccessor.load()).set('Message', 'welcome');
    const session = await this.sessions.load();
    session.regenerate();
    session.setString('user', 'ada');
    return { ok: true };
  }

  @Get('flashed-commit')
  @UseFilters(FlashingOutageFilter)
  flashedCommit(@Session() session: Session, @TempData() tempData: TempDataDictionary) {
    session.setString('name', 'x');
    tempData.set('Message', 'saved');
    return { ok: true };
  }

  @Get('filtered-load')
  @UseFilters(SessionOutageFilter)
  filteredLoad(@Session() session: Session) {
    return { keys: session.keys };
  }
}

async function start(options: SessionModuleOptions): Promise<{ app: INestApplication; url: string }> {
  @Module({
    imports: [SessionModule.forRoot(options)],
    controllers: [ErrorsController],
    providers: [FlashingOutageFilter],
  })
  class ErrorsAppModule {}
  const ref = await Test.createTestingModule({ imports: [ErrorsAppModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

describe('a store outage under throwOnError answers SessionUnavailableError (503 with its code), not a bare 503', () => {
  let loadFails: { app: INestApplication; url: string };
  let commitFails: { app: INestApplication; url: string };
  beforeAll(async () => {
    loadFails = await start({ store: new DownStore(), tempData: { provider: 'session' } });
    // Loads work (no cookie: nothing to load), commits fail.
    commitFails = await start({ store: new DownStore() });
  });
  afterAll(async () => {
    await loadFails.app.close();
    await commitFails.app.close();
  });

  it.each([
    ['@Session() load', '/errors/session'],
    ['@TempData() load (session provider)', '/errors/temp-data'],
  ])('%s', async (_what, path) => {
    const res = await request(loadFails.url)
      .get(path)
      .set('Cookie', await validCookie(loadFails.app));
    expect(res.status).toBe(503);
    expect(res.body).toEqual(REPLY);
  });

  it('the end-of-request commit', async () => {
    const res = await request(commitFails.url).get('/errors/commit').expect(503);
    expect(res.body).toEqual(REPLY);
  });

  it('exception filters can tell it from their own 503s by class, with the action that failed', async () => {
    const commit = await request(commitFails.url).get('/errors/filtered-commit').expect(503);
    expect(commit.body).toEqual({ outage: 'SESSION_UNAVAILABLE', action: 'commit' });
    const load = await request(loadFails.url)
      .get('/errors/filtered-load')
      .set('Cookie', await validCookie(loadFails.app));
    expect(load.body).toEqual({ outage: 'SESSION_UNAVAILABLE', action: 'load' });
  });
});

describe('a failed commit saves nothing of the request, whoever answers', () => {
  let app: INestApplication;
  let url: string;
  const store = new SlowlyDownStore();
  beforeAll(async () => ({ app, url } = await start({ store })));
  afterAll(() => app.close());

  // The route's head is held when the interceptor's commit fails: Nest's filter cannot answer behind it (on
  // Fastify it sees the head as sent and ends the response: the route's 200 went out; on Express its 503
  // queued behind the route's end and the response hung on a Content-Length it did not send).
  it.each(['send', 'raw'])(
    'a route that wrote its own response (through %s) is answered with the 503',
    async (how) => {
      const before = store.commits;
      const res = await request(url).get(`/errors/answered/${how}`).timeout(5000);
      expect(res.status).toBe(503);
      expect(res.body).toEqual(REPLY);
      expect(res.headers['set-cookie']).toBeUndefined();
      // Tried once: the commit before the first byte, queued behind the interceptor's, does not try again (a probe:
      // with Redis hung, two tries one after the other answered after twice the operation timeout).
      expect(store.commits - before).toBe(1);
    },
  );

  it("the 503 replacing a route's own head drops what described the route's body, keeps the app's other headers", async () => {
    const res = await request(url).get('/errors/answered-download').timeout(5000);
    expect(res.status).toBe(503);
    expect(res.body).toEqual(REPLY);
    expect((res as unknown as { res: { statusMessage: string } }).res.statusMessage).toBe(
      'Service Unavailable',
    );
    expect(res.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'access-control-allow-origin': 'https://app.example',
      'x-app': 'kept',
    });
    for (const gone of [
      'content-encoding',
      'content-disposition',
      'content-language',
      'last-modified',
      'transfer-encoding',
      'trailer',
      'x-accel-redirect',
      'surrogate-control',
    ])
      expect(res.headers[gone]).toBeUndefined();
  });

  it("Nest's own filter's 503 is not cacheable, whatever the route said before its commit failed", async () => {
    const res = await request(url).get('/errors/cacheable-commit').timeout(5000);
    expect(res.status).toBe(503);
    expect(res.body).toEqual(REPLY);
    expect(res.headers['cache-control']).toBe('no-cache, no-store');
  });

  it("answers the library's 503 without the TempData cookie the end of the request saved", async () => {
    const res = await request(url).get('/errors/accessor-commit').timeout(5000);
    expect(res.status).toBe(503);
    expect(res.body).toEqual(REPLY);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it("rolls back the handler's TempData when an exception filter answers; the filter's own is saved", async () => {
    const res = await request(url).get('/errors/flashed-commit').timeout(5000);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ outage: 'SESSION_UNAVAILABLE' });
    const cookies = (res.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    const next = await request(url).get('/errors/temp-data').set('Cookie', cookies).expect(200);
    expect(next.body).toEqual({ keys: ['Error'] });
  });
});

describe("a 503 after regenerate() wrote the new key keeps the new key's cookie", () => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => ({ app, url } = await start({ store: new CarryOverFails() })));
  afterAll(() => app.close());

  // The old key is gone by then: without the new cookie the browser would be signed out of a session that exists.
  it('drops the TempData cookie, not the session cookie the commit set before its carry-over failed', async () => {
    const first = await request(url).get('/errors/commit').expect(200);
    const old = `.Nest.Session=${String(first.headers['set-cookie']).split(';')[0].split('=')[1]}`;
    const res = await request(url).get('/errors/sign-in').set('Cookie', old).timeout(5000);
    expect(res.status).toBe(503);
    const cookies = (res.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]);
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(/^\.Nest\.Session=/);
    expect(cookies[0]).not.toBe(old);
    const after = await request(url).get('/errors/session').set('Cookie', cookies[0]).expect(200);
    expect(after.body).toEqual({ keys: expect.arrayContaining(['user']) as unknown });
  });
});

/** A session cookie this app verifies (signed by its key ring), so a load goes to the store. */
async function validCookie(app: INestApplication): Promise<string> {
  const { SessionRuntime } = await import('../../libs/session-state/src/session/session.runtime.js');
  const runtime = app.get(SessionRuntime);
  return `.Nest.Session=${runtime.signer.sign('k'.repeat(32))}`;
}
