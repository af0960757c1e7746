/**
 * "No secret, session key or cookie value is ever written to a log line" (SECURITY.md), for what apps log
 * themselves: the `Session`, the request (which carries the library's state), the injected store, cache and
 * `UserSessions`, and the error of a failed commit. Printed as Nest's ConsoleLogger prints objects (util.inspect,
 * five levels deep; here deeper) and as JSON loggers do; on memory, Redis with a password and PostgreSQL, with two
 * users signed in: nothing of the key ring, the store's credentials, the session keys or the other user shows.
 */
import { Body, Controller, Get, HttpCode, Post, Req, type INestApplication } from '@nestjs/common';
import { inspect } from 'node:util';
import {
  DistributedCache,
  InjectDistributedCache,
  InjectSessionStore,
  Session,
  SessionStore,
  UserSessions,
  type SessionModuleOptions,
} from 'nest-session-state';
import { Redis } from 'ioredis';
import request from 'supertest';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { TestDatabase } from '../support/postgres/index.js';
import { RedisServerProcess } from '../support/redis/index.js';
import { TEST_PLATFORM } from '../support/platform/test-platform.js';

const SECRET = 'L0gs-n3v3r-s33-th1s-s3cr3t-Qm8vTz2xWk5pRn7cYb4hJd';
const REDIS_PASSWORD = 'redis-pw-n0t-in-l0gs-7Hq2';
const POSTGRES_PASSWORD = 'pg-pw-n0t-in-l0gs-4Kx9';

/** util.inspect as Nest's ConsoleLogger calls it (it stops at depth 5), deeper. */
const printed = (value: unknown) => inspect(value, { depth: 8, showHidden: false });

@Controller('logs')
class LogsTestController {
  constructor(
    private readonly users: UserSessions,
    @InjectSessionStore() private readonly store: SessionStore,
    @InjectDistributedCache() private readonly cache: DistributedCache,
  ) {}

  @Post('login')
  @HttpCode(200)
  async login(@Session() session: Session, @Body() body: { user: string }) {
    session.regenerate();
    session.setString('cart', 'three apples');
    await this.users.bind(session, body.user);
    return { id: session.id };
  }

  @Get('print')
  print(@Session() session: Session, @Req() req: object) {
    const objects = { session, store: this.store, cache: this.cache, users: this.users };
    return {
      inspected: printed(objects),
      // The request's own headers hold its cookie: only what the library hangs on it is at stake.
      request: printed(req),
      json: JSON.stringify(objects),
      session: printed(session),
    };
  }

  /** A commit the store refuses (PostgreSQL: a CHECK constraint added by the test): the error an app logs. */
  @Post('failing-commit')
  @HttpCode(200)
  async failingCommit(@Session() session: Session) {
    session.setString('cart', 'x'.repeat(400));
    try {
      await session.commit();
      return { failed: false };
    } catch (error) {
      session.remove('cart');
      return { failed: true, inspected: printed(error) };
    }
  }
}

function sessionKeyOf(cookie: string): string {
  const value = cookie.slice(cookie.indexOf('=') + 1);
  return decodeURIComponent(value.slice(0, value.lastIndexOf('.')));
}

describe(`on ${TEST_PLATFORM}: nothing secret in what apps log`, () => {
  let redis: RedisServerProcess;
  let db: TestDatabase;
  beforeAll(async () => {
    [redis, db] = await Promise.all([
      RedisServerProcess.start({ password: REDIS_PASSWORD }),
      TestDatabase.create(),
    ]);
  });
  afterAll(async () => {
    await redis?.stop();
    await db?.drop();
  });

  /** An app's own client: ioredis's pipelining path, which attaches what it sent to an error reply. */
  let ownClient: Redis | undefined;
  afterAll(() => ownClient?.disconnect());

  const stores: [string, () => SessionModuleOptions][] = [
    ['memory (the default)', () => ({})],
    [
      'redis with a password',
      () => ({ redis: { host: redis.host, port: redis.port, accessKey: REDIS_PASSWORD } }),
    ],
    [
      'redis through an own client with auto-pipelining',
      () => ({
        redis: {
          client: (ownClient = new Redis({
            host: redis.host,
            port: redis.port,
            password: REDIS_PASSWORD,
            enableAutoPipelining: true,
          })),
        },
      }),
    ],
    [
      'postgres with a password in its URL',
      () => ({
        postgres: {
          connectionString: db
            .url()
            .replace('postgres://postgres@', `postgres://postgres:${POSTGRES_PASSWORD}@`),
        },
      }),
    ],
  ];

  describe.each(stores)('%s', (name, options) => {
    let app: INestApplication;
    let url: string;
    beforeAll(async () => {
      ({ app, url } = await startSessionApp(
        { secrets: [SECRET], ...options() },
        { controllers: [LogsTestController] },
      ));
    });
    afterAll(() => app?.close());

    const signIn = async (user: string) => {
      const response = await request(url).post('/logs/login').send({ user }).expect(200);
      const cookie = (response.headers['set-cookie'] as unknown as string[])
        .map((c) => c.split(';')[0])
        .find((c) => c.startsWith('.Nest.Session='))!;
      return { cookie, key: sessionKeyOf(cookie) };
    };

    /** The error of a commit the store refuses, as the app prints it. */
    const failedCommit = async (cookie: string): Promise<string> => {
      const { body } = await request(url).post('/logs/failing-commit').set('Cookie', cookie).expect(200);
      expect(body.failed).toBe(true);
      return body.inspected as string;
    };

    it('the Session, the request, the store, the cache and UserSessions print no secret, key, password or other user', async () => {
      const alice = await signIn(`alice-${name}`);
      const bob = await signIn(`bob-${name}`);
      const { body } = await request(url).get('/logs/print').set('Cookie', bob.cookie).expect(200);
      const library = `${body.inspected}\n${body.json}`;
      for (const secret of [SECRET, REDIS_PASSWORD, POSTGRES_PASSWORD, alice.key, bob.key, `alice-${name}`]) {
        expect(library).not.toContain(secret);
      }
      for (const secret of [SECRET, REDIS_PASSWORD, POSTGRES_PASSWORD, alice.key, `alice-${name}`]) {
        expect(body.request).not.toContain(secret);
      }
      expect(body.request).toContain('RequestState <not shown in logs>');
      // The library's objects show no bytes at all (key material is Buffers); the request's own fields may.
      expect(body.json).not.toMatch(/"type":"Buffer"/);
      expect(printed(JSON.parse(body.json))).not.toContain('<Buffer');
      // What a session does show: its keys, not its values.
      expect(body.session).toBe("DistributedSession { isAvailable: true, keys: [ 'cart' ] }");
      expect(JSON.parse(body.json).session).toEqual({ isAvailable: true, keys: ['cart'] });
    });

    if (name.startsWith('redis'))
      it("a failed commit's error quotes nothing it sent (ioredis attaches the command's arguments to an error reply)", async () => {
        const bob = await signIn(`bob-oom-${name}`);
        const admin = redis.admin();
        await admin.config('SET', 'maxmemory', '1');
        try {
          const inspected = await failedCommit(bob.cookie);
          expect(inspected).toContain('OOM'); // the cause is there, its message kept
          expect(inspected).not.toContain(bob.key);
          expect(inspected).not.toMatch(/xxxxxxxxxx|args|<Buffer/);
        } finally {
          await admin.config('SET', 'maxmemory', '0');
        }
      });

    if (name.startsWith('postgres'))
      it("a failed commit's error quotes no stored row (PostgreSQL's detail: 'Failing row contains (<key>, <data>, ...)')", async () => {
        const bob = await signIn('bob-check');
        await db.query(
          'ALTER TABLE nest_sessions ADD CONSTRAINT logs_test_small CHECK (octet_length(data::text) < 300)',
        );
        try {
          const inspected = await failedCommit(bob.cookie);
          expect(inspected).toContain('23514'); // check_violation: the cause is there, its code kept
          expect(inspected).not.toContain(bob.key);
          expect(inspected).not.toMatch(/Failing row|detail/);
        } finally {
          await db.query('ALTER TABLE nest_sessions DROP CONSTRAINT logs_test_small');
        }
      });
  });
});
