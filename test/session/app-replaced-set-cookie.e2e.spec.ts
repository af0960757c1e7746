import type { ServerResponse } from 'node:http';
import {
  Controller,
  Get,
  Injectable,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import request from 'supertest';
import { Session, SessionStateInterceptor, TempData, type TempDataDictionary } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair, findSetCookie, setCookies } from '../support/cookie-jar.js';

/**
 * `SessionStateInterceptor` commits in Nest's pipeline, so the session cookie is on the response before an outer
 * interceptor (or filter) runs. One that sets the Set-Cookie header whole (`res.setHeader('Set-Cookie', ...)`, which
 * replaces) used to drop it: a new session stored, its cookie never sent. The cookie is put back before the head
 * leaves, as it is when the commit runs at the first byte (after such code).
 */
const COOKIE = '.Nest.Session';

/** Node's response under the platform's (Express's response is one; Fastify's reply carries it as `raw`). */
const nodeResponse = (res: object): ServerResponse =>
  ((res as { raw?: ServerResponse }).raw ?? res) as ServerResponse;

/**
 * An interceptor outside SessionStateInterceptor: `change` runs on the response's headers after the handler and the
 * inner interceptor's commit.
 */
function changingHeadersAfterCommit(change: (res: ServerResponse) => void): Type<NestInterceptor> {
  @Injectable()
  class ChangesHeadersAfterCommit implements NestInterceptor {
    intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
      const res = nodeResponse(context.switchToHttp().getResponse<object>());
      return next.handle().pipe(
        map((body: unknown) => {
          change(res);
          return body;
        }),
      );
    }
  }
  return ChangesHeadersAfterCommit;
}

/** Sets the app's own cookie, replacing the header. */
const ReplacesSetCookie = changingHeadersAfterCommit((res) => res.setHeader('Set-Cookie', 'app=1; Path=/'));

/** A controller at `path` whose `start` sets a value, behind `outer` and SessionStateInterceptor. */
function startingController(path: string, outer: Type<NestInterceptor>): Type<unknown> {
  @Controller(path)
  @UseInterceptors(outer, SessionStateInterceptor)
  class StartingController {
    @Get('start')
    start(@Session() session: Session) {
      session.setString('name', 'kept');
      return { ok: true };
    }
  }
  return StartingController;
}

/** Drops every Set-Cookie and makes the response publicly cacheable. */
const StrippedSetCookieController = startingController(
  'stripped',
  changingHeadersAfterCommit((res) => {
    res.removeHeader('Set-Cookie');
    res.setHeader('Cache-Control', 'public, max-age=600');
  }),
);

/** Makes the response publicly cacheable, leaving its cookies. */
const CacheableController = startingController(
  'cacheable',
  changingHeadersAfterCommit((res) => res.setHeader('Cache-Control', 'public, max-age=600')),
);

@Controller('replaced')
@UseInterceptors(ReplacesSetCookie, SessionStateInterceptor)
class ReplacedSetCookieController {
  @Get('start')
  start(@Session() session: Session) {
    session.setString('name', 'kept');
    return { ok: true };
  }

  @Get('sign-out')
  signOut(@Session() session: Session) {
    session.abandon();
    return { ok: true };
  }

  @Get('flash')
  flash(@TempData() tempData: TempDataDictionary) {
    tempData.set('flash', 'saved');
    return { ok: true };
  }

  @Get('read')
  read(@Session() session: Session, @TempData('flash') flash?: string) {
    return { name: session.getString('name') ?? null, flash: flash ?? null };
  }
}

describe("an app that replaces the Set-Cookie header after the pipeline's commit", () => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startSessionApp(
      {},
      { controllers: [ReplacedSetCookieController, StrippedSetCookieController, CacheableController] },
    ));
  });
  afterAll(() => app.close());

  it("a new session's cookie still reaches the browser, beside the app's", async () => {
    const res = await request(url).get('/replaced/start').expect(200);
    expect(findSetCookie(res, 'app')).toBeDefined();
    const cookie = cookiePair(res, COOKIE);
    expect((await request(url).get('/replaced/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'kept',
      flash: null,
    });
  });

  it("a TempData message's cookie still reaches the browser", async () => {
    const res = await request(url).get('/replaced/flash').expect(200);
    const cookies = setCookies(res)
      .filter((c) => !c.startsWith('app='))
      .map((c) => c.split(';')[0])
      .join('; ');
    expect(cookies).not.toBe('');
    expect((await request(url).get('/replaced/read').set('Cookie', cookies).expect(200)).body).toEqual({
      name: null,
      flash: 'saved',
    });
  });

  it('a cookie put back after the app removed them all: the response is not left publicly cacheable', async () => {
    const res = await request(url).get('/stripped/start').expect(200);
    const cookie = cookiePair(res, COOKIE);
    expect(res.headers['cache-control']).toMatch(/no-store/);
    expect(res.headers['cache-control']).not.toMatch(/public/);
    expect((await request(url).get('/replaced/read').set('Cookie', cookie).expect(200)).body).toEqual({
      name: 'kept',
      flash: null,
    });
  });

  it('a response made publicly cacheable after the commit set its cookie: not left cacheable', async () => {
    const res = await request(url).get('/cacheable/start').expect(200);
    expect(findSetCookie(res, COOKIE)).toBeDefined();
    expect(res.headers['cache-control']).toMatch(/no-store/);
    expect(res.headers['cache-control']).not.toMatch(/public/);
  });

  it("an abandon's cookie deletion still reaches the browser", async () => {
    const cookie = cookiePair(await request(url).get('/replaced/start').expect(200), COOKIE);
    const res = await request(url).get('/replaced/sign-out').set('Cookie', cookie).expect(200);
    expect(
      setCookies(res).some((c) => c.startsWith(`${COOKIE}=;`) && /Expires=Thu, 01 Jan 1970/.test(c)),
    ).toBe(true);
  });
});
