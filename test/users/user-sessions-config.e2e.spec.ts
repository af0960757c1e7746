import {
  Body,
  Controller,
  Get,
  HttpCode,
  Injectable,
  type INestApplication,
  Module,
  Post,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
} from '@nestjs/common';
import {
  MemoryDistributedCache,
  Session,
  SessionConfigurationError,
  UserSessionNotStoredError,
  UserSessions,
  UserSessionsUnsupportedError,
} from 'nest-session-state';
import { startUsersApp, SECRETS } from './support/user-sessions.stores.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { aclUser, RedisServerProcess } from '../support/redis/index.js';
import { BrowserClient } from './support/browser-client.js';

/** A middleware, the only place that injects UserSessions (it lists the visitor's devices). */
@Injectable()
class SignedInMiddleware implements NestMiddleware {
  constructor(private readonly userSessions: UserSessions) {}
  use(_req: unknown, _res: unknown, next: () => void) {
    void this.userSessions;
    next();
  }
}

@Module({})
class SignedInMiddlewareModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(SignedInMiddleware).forRoutes('*');
  }
}

/** A sign-in that reports what bind() threw. */
@Controller('reporting')
class ReportingLoginController {
  constructor(private readonly userSessions: UserSessions) {}

  @Post('login')
  @HttpCode(200)
  async login(@Session() session: Session, @Body() body: { user: string }) {
    session.regenerate();
    session.setString('user', body.user);
    try {
      return { bound: await this.userSessions.bind(session, body.user) };
    } catch (error) {
      return { error: (error as Error).name, stored: error instanceof UserSessionNotStoredError };
    }
  }

  /** Records new metadata for the signed-in session ("rename this device"). */
  @Post('rename')
  @HttpCode(200)
  async rename(@Session() session: Session, @Body() body: { device: string }) {
    try {
      return {
        bound: await this.userSessions.bind(session, session.getString('user')!, { device: body.device }),
      };
    } catch (error) {
      return { error: (error as Error).name };
    }
  }

  /** Signs in again (a re-authentication): a new key, committed, then bound with new metadata. */
  @Post('reauth')
  @HttpCode(200)
  async reauth(@Session() session: Session, @Body() body: { device: string }) {
    session.regenerate();
    await session.commit();
    try {
      return {
        bound: await this.userSessions.bind(session, session.getString('user')!, { device: body.device }),
      };
    } catch (error) {
      return { error: (error as Error).name };
    }
  }

  @Get('me')
  me(@Session() session: Session) {
    return { user: session.getString('user') ?? null };
  }
}

/** An app with ReportingLoginController and a browser signed in there as `ada`; `body` runs, then the app closes. */
async function withAdaSignedIn(
  body: (app: INestApplication, url: string, browser: BrowserClient) => Promise<void>,
): Promise<void> {
  const { app, url } = await startSessionApp(
    { secrets: SECRETS },
    { controllers: [ReportingLoginController] },
  );
  try {
    const browser = new BrowserClient('ok');
    expect((await browser.request(`${url}/reporting/login`, 'POST', { user: 'ada' })).json).toEqual({
      bound: true,
    });
    await body(app, url, browser);
  } finally {
    await app.close();
  }
}

/** Issue 22: the option, the store check and the binding's input checks, each with the message that says what to do. */
describe('UserSessions configuration and input', () => {
  it.each([0, -1, 1.5, Number.NaN])(
    'refuses users.maxSessionsPerUser %p at startup, naming the option',
    async (value) => {
      await expect(startUsersApp({ secrets: SECRETS, users: { maxSessionsPerUser: value } })).rejects.toThrow(
        SessionConfigurationError,
      );
      await expect(startUsersApp({ secrets: SECRETS, users: { maxSessionsPerUser: value } })).rejects.toThrow(
        /users\.maxSessionsPerUser must be a positive integer, or Infinity/,
      );
    },
  );

  it('quotes a string given for it (from an env var), which the message would otherwise show as the number it names', async () => {
    const options = { secrets: SECRETS, users: { maxSessionsPerUser: 'Infinity' as unknown as number } };
    await expect(startUsersApp(options)).rejects.toThrow(
      /or Infinity for no limit \(got "Infinity", a string: convert it with Number\(\)\)/,
    );
  });

  it("an app that injects UserSessions fails at startup when a Redis ACL user lacks the user index's keys (sign-ins answered 503)", async () => {
    const server = await RedisServerProcess.start();
    try {
      const options = {
        secrets: SECRETS,
        redis: await aclUser(server, 'hal', ['~{shop_*}_Data', '~{shop_*}_Ended']),
      };
      // Nothing injects UserSessions (and users is not configured): the keys it would need are not asked for.
      const { app } = await startSessionApp(options);
      await app.close();
      const refusal =
        /refused the ACL user hal the session keys \(NOPERM\).*\{shop_user_\*\}_Sessions and _SessionInfo with users/;
      await expect(startUsersApp(options)).rejects.toThrow(refusal);
      // Also when only a Nest middleware injects it (middleware is registered after the providers)
      await expect(startSessionApp(options, { imports: [SignedInMiddlewareModule] })).rejects.toThrow(
        refusal,
      );
    } finally {
      await server.stop();
    }
  });

  it('refuses a misspelt users option with the name it meant', async () => {
    const options = JSON.parse('{ "users": { "maxSessionPerUser": 2 } }') as object;
    await expect(startUsersApp({ secrets: SECRETS, ...options })).rejects.toThrow(
      /users\.maxSessionsPerUser/,
    );
  });

  it('over a store without a user index, says which stores have one', async () => {
    const { app } = await startUsersApp({ secrets: SECRETS, cache: new MemoryDistributedCache() });
    try {
      const userSessions = app.get(UserSessions);
      await expect(userSessions.list('alice')).rejects.toThrow(UserSessionsUnsupportedError);
      await expect(userSessions.list('alice')).rejects.toThrow(
        /memory store .*, the Redis store .* or the PostgreSQL store/,
      );
    } finally {
      await app.close();
    }
  });

  it('a bind() refused for its input leaves no signed-in session that cannot be listed or revoked', async () => {
    // A sign-in as the README writes it (regenerate(), the user stored, bind() with the request's User-Agent): a
    // client sending a User-Agent over the metadata limit got a 500 and still held a signed-in session, bound to no
    // user, which UserSessions did not list and revokeAll() ("sign out everywhere") did not sign out.
    const { app, url } = await startUsersApp({ secrets: SECRETS });
    try {
      const userSessions = app.get(UserSessions);
      for (const body of [{ user: 'mallory' }, { user: 'mallory', device: 'x\u0000y' }]) {
        const browser = new BrowserClient(body.device === undefined ? 'x'.repeat(3000) : 'ok');
        expect((await browser.request(`${url}/users/login`, 'POST', body)).status).toBe(500);
        await userSessions.revokeAll('mallory');
        expect((await browser.request(`${url}/users/me`)).json).toEqual({ user: null, keys: [] });
      }
    } finally {
      await app.close();
    }
  });

  it('a bind() refused over session.maxKeys (413) leaves no signed-in session that cannot be listed or revoked', async () => {
    const { app, url } = await startUsersApp({ secrets: SECRETS, session: { maxKeys: 2 } });
    try {
      const browser = new BrowserClient('ok');
      expect((await browser.request(`${url}/users/cart`, 'POST')).status).toBe(200);
      // cart and user: the session holds maxKeys values, and the binding's field would be one more.
      expect((await browser.request(`${url}/users/login`, 'POST', { user: 'mallory' })).status).toBe(413);
      await app.get(UserSessions).revokeAll('mallory');
      expect((await browser.request(`${url}/users/me`)).json).toEqual({ user: null, keys: [] });
    } finally {
      await app.close();
    }
  });

  it('a bind() refused for its input on a session bound already (a device rename) leaves it signed in and listed', async () => {
    await withAdaSignedIn(async (app, url, browser) => {
      const rename = await browser.request(`${url}/reporting/rename`, 'POST', { device: 'x'.repeat(3000) });
      expect(rename.json).toEqual({ error: 'RangeError' });
      expect((await browser.request(`${url}/reporting/me`)).json).toEqual({ user: 'ada' });
      expect(await app.get(UserSessions).list('ada')).toHaveLength(1);
    });
  });

  it('a bind() refused for its input after a committed regenerate() abandons the session: its index entry names the old key', async () => {
    await withAdaSignedIn(async (app, url, browser) => {
      const reauth = await browser.request(`${url}/reporting/reauth`, 'POST', { device: 'x'.repeat(3000) });
      expect(reauth.json).toEqual({ error: 'RangeError' });
      expect((await browser.request(`${url}/reporting/me`)).json).toEqual({ user: null });
      expect(await app.get(UserSessions).list('ada')).toEqual([]);
    });
  });

  it('bind() of a session that cannot be stored (no cookie consent) throws UserSessionNotStoredError and lists nothing', async () => {
    // docs/API.md: a sign-in without consent to non-essential cookies stores no session, so nothing can be bound.
    const { app, url } = await startSessionApp(
      { secrets: SECRETS, hasConsent: () => false },
      { controllers: [ReportingLoginController] },
    );
    try {
      const browser = new BrowserClient('ok');
      expect((await browser.request(`${url}/reporting/login`, 'POST', { user: 'ada' })).json).toEqual({
        error: 'UserSessionNotStoredError',
        stored: true,
      });
      expect(browser.jar.header()).toBe('');
      expect(await app.get(UserSessions).list('ada')).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('refuses an empty user id, one with NUL, and non-string or oversized metadata, naming the problem', async () => {
    const { app, url } = await startUsersApp({ secrets: SECRETS });
    try {
      const userSessions = app.get(UserSessions);
      await expect(userSessions.list('')).rejects.toThrow(/non-empty string user id/);
      // Refused on every store (PostgreSQL cannot store it), before any store call: not an outage.
      await expect(userSessions.list('a\u0000b')).rejects.toThrow(TypeError);
      await expect(userSessions.revokeAll('a\u0000b')).rejects.toThrow(/must not contain the NUL character/);
      const nul = await new BrowserClient('ok').request(`${url}/users/login`, 'POST', {
        user: 'a',
        device: 'x\u0000y',
      });
      expect(nul.status).toBe(500); // a TypeError from bind(), before any store call
      // A lone surrogate: Redis and PostgreSQL would store U+FFFD, so two users' ids (or names) would meet.
      await expect(userSessions.list('a\ud800')).rejects.toThrow(/user ids must be well-formed UTF-16/);
      await expect(userSessions.revokeAll('\udc00')).rejects.toThrow(TypeError);
      const lone = await new BrowserClient('ok').request(`${url}/users/login`, 'POST', {
        user: 'a',
        metadata: { ['x\ud800']: 'y' },
      });
      expect(lone.status).toBe(500); // a metadata name with one: refused, names could meet
      // A value with one (a user agent cut inside a pair) is only shown: stored with U+FFFD, as Redis would.
      const cut = new BrowserClient('ok');
      const signedIn = await cut.request(`${url}/users/login`, 'POST', { user: 'cut', device: 'x\ud800' });
      expect(signedIn.status).toBe(200);
      const cutList = await cut.request(`${url}/users/sessions`);
      expect((cutList.json.sessions as { metadata: Record<string, string> }[])[0].metadata.device).toBe(
        'x\ufffd',
      );
      // Through a request: the login route binds with the user agent; a huge one is refused with a 500 and a clear log.
      const res = await new BrowserClient('x'.repeat(3000)).request(`${url}/users/login`, 'POST', {
        user: 'a',
      });
      expect(res.status).toBe(500);
      const listed = await new BrowserClient('ok').request(`${url}/users/sessions`);
      expect(listed.status).toBe(401);
    } finally {
      await app.close();
    }
  });
});
