import {
  Catch,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Post,
  Query,
  UseFilters,
  UseInterceptors,
  type ArgumentsHost,
  type ExceptionFilter,
  type INestApplication,
} from '@nestjs/common';
import request from 'supertest';
import {
  Session,
  SessionMovedError,
  SessionStateInterceptor,
  SessionAccessor,
  SessionUnavailableError,
  TempData,
  TempDataAccessor,
} from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { CommitsFailingOn } from '../support/commit-stores.js';
import { cookiePair } from '../support/cookie-jar.js';
import { redirectTo, sendBody, TEST_PLATFORM } from '../support/platform/test-platform.js';

const SECRETS = ['Vb8nQ2xK6mLz0pTr4yWc9sHd3jFg7aEu1iOe5tYr2N'];
const COOKIE = '.Nest.Session';
const FAIL = 'fail-this-commit';

/** What an app's exception filter answers for a failed commit: a redirect back to a page that explains it. */
@Catch(SessionMovedError, SessionUnavailableError)
class BackToThePage implements ExceptionFilter {
  catch(error: SessionMovedError | SessionUnavailableError, host: ArgumentsHost) {
    redirectTo(host.switchToHttp().getResponse(), `/page?failed=${error.code}`, 303);
  }
}

/** The same, with a message in TempData for the page it redirects to. */
@Catch(SessionUnavailableError)
@Injectable()
class BackWithAMessage implements ExceptionFilter {
  constructor(private readonly tempData: TempDataAccessor) {}

  async catch(_error: SessionUnavailableError, host: ArgumentsHost) {
    (await this.tempData.load()).set('Error', 'Not saved: please try again.');
    redirectTo(host.switchToHttp().getResponse(), '/page', 303);
  }
}

/** An app that signs the visitor out when a commit fails (a reaction to the failure: it applies). */
@Catch(SessionUnavailableError)
@Injectable()
class SignOutOnFailure implements ExceptionFilter {
  constructor(private readonly sessions: SessionAccessor) {}

  async catch(_error: SessionUnavailableError, host: ArgumentsHost) {
    (await this.sessions.load()).abandon();
    redirectTo(host.switchToHttp().getResponse(), '/signed-out', 303);
  }
}

/** Signs the visitor out after the failure, commits that sign-out itself, and answers 503 when it fails too. */
@Catch(SessionUnavailableError)
@Injectable()
class SignOutNowOnFailure implements ExceptionFilter {
  constructor(private readonly sessions: SessionAccessor) {}

  async catch(_error: SessionUnavailableError, host: ArgumentsHost) {
    const session = await this.sessions.load();
    session.abandon();
    try {
      await session.commit();
      redirectTo(host.switchToHttp().getResponse(), '/signed-out', 303);
    } catch {
      sendBody(host.switchToHttp().getResponse(), { signedOut: false }, 503);
    }
  }
}

/** Sets the name and commits it: what most routes below do, under different decorators. */
async function setAndCommit(session: Session, value: string): Promise<{ committed: true }> {
  session.setString('name', value);
  await session.commit();
  return { committed: true };
}

/** Tries to save first (refused: the failure is the request's answer), then signs the visitor out. */
@Catch(SessionUnavailableError)
@Injectable()
class TriesThenSignsOut implements ExceptionFilter {
  constructor(private readonly sessions: SessionAccessor) {}

  async catch(_error: SessionUnavailableError, host: ArgumentsHost) {
    const session = await this.sessions.load();
    try {
      await session.commit();
    } catch {
      session.abandon();
    }
    redirectTo(host.switchToHttp().getResponse(), '/signed-out', 303);
  }
}

/**
 * Handlers that commit themselves (`session.commit()`, as `UserSessions.bind()` does inside) and meet a failure:
 * they let it propagate (with and without SessionStateInterceptor, with an exception filter that redirects) or
 * swallow it.
 */
@Controller('explicit')
class ExplicitCommitController {
  constructor(private readonly tempData: TempDataAccessor) {}

  @Post('propagates')
  async propagates(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }

  @Post('propagates-through-interceptor')
  @UseInterceptors(SessionStateInterceptor)
  async throughInterceptor(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }

  @Post('swallows')
  @HttpCode(200)
  async swallows(@Session() session: Session, @Query('value') value: string) {
    session.setString('name', value);
    try {
      await session.commit();
      return { committed: true };
    } catch {
      return { committed: false }; // the end of the request tries the write again
    }
  }

  /** A sign-in: the session moves to a new key. Sent with a cookie whose session moved already, it is refused. */
  @Post('sign-in')
  @HttpCode(200)
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(BackToThePage)
  async signIn(@Session() session: Session, @Query('value') value: string) {
    session.regenerate();
    session.setString('name', value);
    await session.commit();
    return { signedIn: true };
  }

  @Post('sign-in-without-interceptor')
  @HttpCode(200)
  @UseFilters(BackToThePage)
  async signInWithoutInterceptor(@Session() session: Session, @Query('value') value: string) {
    session.regenerate();
    session.setString('name', value);
    await session.commit();
    return { signedIn: true };
  }

  @Post('redirects-with-a-message')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(BackWithAMessage)
  async redirectsWithAMessage(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }

  @Post('signs-out-on-failure')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(SignOutOnFailure)
  async signsOutOnFailure(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }

  /** A sign-out and a new value in one commit, which fails (its delete, here): nothing of it may land. */
  @Post('abandon-then-set')
  async abandonThenSet(@Session() session: Session, @Query('value') value: string) {
    session.abandon();
    return setAndCommit(session, value);
  }

  /** A flash service's message (the accessor, no interceptor), then a commit that fails. */
  @Post('flash-then-commit')
  async flashThenCommit(@Session() session: Session, @Query('value') value: string) {
    (await this.tempData.load()).set('Message', 'Saved!');
    return setAndCommit(session, value);
  }

  @Post('tries-then-signs-out')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(TriesThenSignsOut)
  async triesThenSignsOut(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }

  @Post('signs-out-now-on-failure')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(SignOutNowOnFailure)
  async signsOutNowOnFailure(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }

  /** The flash service's message, a commit that fails, then a sign-out before the error goes on (bind() does so). */
  @Post('flash-commit-abandon')
  async flashCommitAbandon(@Session() session: Session, @Query('value') value: string) {
    (await this.tempData.load()).set('Message', 'Saved!');
    session.setString('name', value);
    try {
      await session.commit();
    } catch (error) {
      session.abandon();
      throw error;
    }
    return { committed: true };
  }

  @Post('redirects-on-failure')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(BackToThePage)
  async redirectsOnFailure(@Session() session: Session, @Query('value') value: string) {
    return setAndCommit(session, value);
  }
}

@Controller()
class MessageController {
  @Get('message')
  message(@TempData('Error') message: string | undefined, @Session() session: Session) {
    return { message: message ?? null, name: session.getString('name') ?? null };
  }
}

describe(`on ${TEST_PLATFORM}: a commit the handler ran failed, and its failure is the answer`, () => {
  let app: INestApplication;
  let url: string;
  beforeAll(
    async () =>
      ({ app, url } = await startSessionApp(
        { secrets: SECRETS, store: new CommitsFailingOn(FAIL) },
        { controllers: [ExplicitCommitController] },
      )),
  );
  afterAll(() => app.close());

  let failures = 0;
  /** A value the store fails the first commit of (a store that went away for a moment): a new one each time. */
  const failing = () => `${FAIL}-${++failures}`;

  const established = async () => {
    const cookie = cookiePair(
      await request(url).post('/set/name').send({ value: 'initial' }).expect(200),
      COOKIE,
    );
    return cookie;
  };
  const storedName = async (cookie: string) =>
    ((await request(url).get('/read').set('Cookie', cookie).expect(200)).body as { name: string | null })
      .name;

  it.each(['propagates', 'propagates-through-interceptor'])(
    'a 503 reached the client (%s): the end of the request does not try the write again, so it never lands',
    async (route) => {
      // An app of its own: the failure log is written once per 10 s.
      const logger = new CaptureLogger();
      const own = await startSessionApp(
        { secrets: SECRETS, store: new CommitsFailingOn(FAIL) },
        { controllers: [ExplicitCommitController], logger },
      );
      try {
        const cookie = cookiePair(
          await request(own.url).post('/set/name').send({ value: 'initial' }).expect(200),
          COOKIE,
        );
        const reply = await request(own.url)
          .post(`/explicit/${route}`)
          .query({ value: failing() })
          .set('Cookie', cookie);
        expect(reply.status).toBe(503);
        expect(reply.body).toMatchObject({ code: 'SESSION_UNAVAILABLE' });
        const read = await request(own.url).get('/read').set('Cookie', cookie).expect(200);
        expect(read.body).toMatchObject({ name: 'initial' });
        // Logged as every failed commit is, for the alerts on outages.
        expect(logger.has(/Session commit failed/)).toBe(true);
      } finally {
        await own.app.close();
      }
    },
  );

  it("an exception filter's redirect for the failure stands (behind SessionStateInterceptor); nothing lands", async () => {
    const cookie = await established();
    const reply = await request(url)
      .post('/explicit/redirects-on-failure')
      .query({ value: failing() })
      .set('Cookie', cookie);
    expect(reply.status).toBe(303);
    expect(reply.headers.location).toBe('/page?failed=SESSION_UNAVAILABLE');
    expect(await storedName(cookie)).toBe('initial');
  });

  it('a handler that swallowed the failure and answered 200: the end of the request tries the write again, and it lands', async () => {
    const cookie = await established();
    const value = failing();
    const reply = await request(url).post('/explicit/swallows').query({ value }).set('Cookie', cookie);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ committed: false });
    expect(await storedName(cookie)).toBe(value);
  });

  it("a sign-in sent with a cookie another sign-in moved: refused, and the filter's redirect stands (behind the interceptor)", async () => {
    const before = await established();
    const first = await request(url)
      .post('/explicit/sign-in')
      .query({ value: 'first' })
      .set('Cookie', before);
    expect(first.status).toBe(200);
    const after = cookiePair(first, COOKIE);

    const second = await request(url)
      .post('/explicit/sign-in')
      .query({ value: 'second' })
      .set('Cookie', before);
    expect(second.status).toBe(303);
    expect(second.headers.location).toBe('/page?failed=SESSION_MOVED');
    expect(second.headers['set-cookie']).toBeUndefined(); // the browser keeps the first sign-in's cookie
    expect(await storedName(after)).toBe('first');
  });

  it("without the interceptor a filter's redirect is a response answered as done: the write is tried again and refused, the 409", async () => {
    const before = await established();
    const first = await request(url)
      .post('/explicit/sign-in')
      .query({ value: 'first' })
      .set('Cookie', before);
    const after = cookiePair(first, COOKIE);
    const second = await request(url)
      .post('/explicit/sign-in-without-interceptor')
      .query({ value: 'second' })
      .set('Cookie', before);
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ code: 'SESSION_MOVED' });
    expect(await storedName(after)).toBe('first');
  });
});

describe.each(['cookie', 'session'] as const)(
  `on ${TEST_PLATFORM}: TempData an exception filter sets for a failed commit (%s provider)`,
  (provider) => {
    let app: INestApplication;
    let url: string;
    beforeAll(
      async () =>
        ({ app, url } = await startSessionApp(
          { secrets: SECRETS, store: new CommitsFailingOn(FAIL), tempData: { provider } },
          { controllers: [ExplicitCommitController, MessageController] },
        )),
    );
    afterAll(() => app.close());

    it(
      provider === 'cookie'
        ? 'the cookie provider saves it: the page the filter redirects to shows the message'
        : 'the session provider cannot (it would go into the session whose commit failed): not saved, the failed write neither',
      async () => {
        const cookie = cookiePair(
          await request(url).post('/set/name').send({ value: 'initial' }).expect(200),
          COOKIE,
        );
        const reply = await request(url)
          .post('/explicit/redirects-with-a-message')
          .query({ value: `${FAIL}-message` })
          .set('Cookie', cookie);
        expect(reply.status).toBe(303);
        const tempDataCookies = ((reply.headers['set-cookie'] as unknown as string[] | undefined) ?? [])
          .filter((set) => set.startsWith('.Nest.TempData'))
          .map((set) => set.split(';')[0]);
        const page = await request(url)
          .get('/message')
          .set('Cookie', [cookie, ...tempDataCookies].join('; '))
          .expect(200);
        expect(page.body).toEqual({
          message: provider === 'cookie' ? 'Not saved: please try again.' : null,
          name: 'initial',
        });
      },
    );
  },
);

/** A memory store whose next delete fails (a store gone for a moment), and whose loads fail while `loadsFail`. */
class FlakyDeletes extends CommitsFailingOn {
  failNextRemove = false;
  loadsFail = false;

  override remove(...args: Parameters<CommitsFailingOn['remove']>): Promise<void> {
    if (!this.failNextRemove) return super.remove(...args);
    this.failNextRemove = false;
    return Promise.reject(new Error('disk on fire'));
  }

  override load(...args: Parameters<CommitsFailingOn['load']>) {
    return this.loadsFail ? Promise.reject(new Error('disk on fire')) : super.load(...args);
  }
}

describe(`on ${TEST_PLATFORM}: what happens after a commit the handler ran failed`, () => {
  let app: INestApplication;
  let url: string;
  const store = new FlakyDeletes(FAIL);
  const logger = new CaptureLogger();
  beforeAll(
    async () =>
      ({ app, url } = await startSessionApp(
        { secrets: SECRETS, store },
        { controllers: [ExplicitCommitController], logger },
      )),
  );
  afterAll(() => app.close());

  const established = async () =>
    cookiePair(await request(url).post('/set/name').send({ value: 'initial' }).expect(200), COOKIE);
  /** The memory store's throwOnError is true; the runtime reads it per request. */
  const throwsOnError = (value: boolean) => Object.assign(store, { throwOnError: value });
  const read = async (cookie: string) =>
    (await request(url).get('/read').set('Cookie', cookie).expect(200)).body as {
      keys: string[];
      name: unknown;
    };

  it("an exception filter's sign-out after the failure applies: the session is deleted with its cookie", async () => {
    const cookie = await established();
    const reply = await request(url)
      .post('/explicit/signs-out-on-failure')
      .query({ value: `${FAIL}-signs-out` })
      .set('Cookie', cookie);
    expect(reply.status).toBe(303);
    expect(String(reply.headers['set-cookie'])).toMatch(/^\.Nest\.Session=;.*expires=Thu, 01 Jan 1970/i);
    expect(await read(cookie)).toMatchObject({ keys: [], name: null });
  });

  it("a filter's sign-out after its own commit was refused (the failure is the answer) applies all the same", async () => {
    const cookie = await established();
    const reply = await request(url)
      .post('/explicit/tries-then-signs-out')
      .query({ value: `${FAIL}-tries` })
      .set('Cookie', cookie);
    expect(reply.status).toBe(303);
    expect(String(reply.headers['set-cookie'])).toMatch(/^\.Nest\.Session=;.*expires=Thu, 01 Jan 1970/i);
    expect(await read(cookie)).toMatchObject({ keys: [], name: null });
  });

  it('a sign-out and a new value committed together, the delete failing: the 503, and neither lands later', async () => {
    const cookie = await established();
    store.failNextRemove = true;
    const reply = await request(url)
      .post('/explicit/abandon-then-set')
      .query({ value: 'bob' })
      .set('Cookie', cookie);
    expect(reply.status).toBe(503);
    expect(reply.headers['set-cookie']).toBeUndefined(); // no new session's cookie
    expect(await read(cookie)).toMatchObject({ name: 'initial' }); // not signed out either
  });

  it('the 503 of a failed commit carries no TempData the handler set through the accessor (no interceptor)', async () => {
    const cookie = await established();
    const reply = await request(url)
      .post('/explicit/flash-then-commit')
      .query({ value: `${FAIL}-flash` })
      .set('Cookie', cookie);
    expect(reply.status).toBe(503);
    expect(((reply.headers['set-cookie'] as unknown as string[] | undefined) ?? []).join()).not.toMatch(
      /\.Nest\.TempData=[^;]/,
    );
    expect(await read(cookie)).toMatchObject({ name: 'initial' });
  });

  it.each([
    ['a sign-out after the failure committed', '/explicit/flash-commit-abandon', true],
    ['throwOnError: false', '/explicit/flash-then-commit', false],
  ])(
    'the 503 of a failed commit carries no TempData the handler set through the accessor, also with %s',
    async (_case, route, throwOnError) => {
      const cookie = await established();
      throwsOnError(throwOnError);
      try {
        const reply = await request(url)
          .post(route)
          .query({ value: `${FAIL}-flash-${route}` })
          .set('Cookie', cookie);
        expect(reply.status).toBe(503);
        expect(((reply.headers['set-cookie'] as unknown as string[] | undefined) ?? []).join()).not.toMatch(
          /\.Nest\.TempData=[^;]/,
        );
      } finally {
        throwsOnError(true);
      }
    },
  );

  it("an exception filter's own commit that fails too (its sign-out) is its answer as well: not tried again behind its 503", async () => {
    const cookie = await established();
    store.failNextRemove = true;
    const reply = await request(url)
      .post('/explicit/signs-out-now-on-failure')
      .query({ value: `${FAIL}-twice` })
      .set('Cookie', cookie);
    expect(reply.status).toBe(503);
    expect(reply.body).toEqual({ signedOut: false });
    expect(reply.headers['set-cookie']).toBeUndefined();
    expect(await read(cookie)).toMatchObject({ name: 'initial' }); // still signed in, as the 503 says
  });

  it('throwOnError: false, a commit after a failed load: its 503 is logged as the load failure, not as a failed commit', async () => {
    const cookie = await established();
    store.loadsFail = true;
    throwsOnError(false); // the handler runs without its session, and its commit() throws
    const linesBefore = logger.lines.length;
    try {
      await request(url).post('/explicit/propagates').query({ value: 'x' }).set('Cookie', cookie).expect(503);
    } finally {
      store.loadsFail = false;
      throwsOnError(true);
    }
    expect(logger.lines.slice(linesBefore).map((line) => line.message)).toContainEqual(
      expect.stringMatching(/SessionLoadFailed/),
    );
    const logged = logger.lines.slice(linesBefore).map((line) => line.message);
    expect(logged.filter((message) => /SessionCommitFailed/.test(message))).toEqual([]);
    expect(await read(cookie)).toMatchObject({ name: 'initial' });
  });
});
