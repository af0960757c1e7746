/**
 * GraphQL with a slow or failing store: commits land before the response's headers leave, an outage is
 * a GraphQL error with the code SESSION_UNAVAILABLE (never a crash, an HTML page or a bare 500), and a
 * mutation whose commit failed is never reported as done. Real Redis processes, stopped or stalled.
 */
import { Logger, type INestApplication } from '@nestjs/common';
import type { SessionModuleOptions } from 'nest-session-state';
import { RedisServerProcess } from '../support/redis/index.js';
import { StallProxy } from '../support/stall-proxy.js';
import { CaptureLogger } from '../support/capture-logger.js';
import { TEST_PLATFORM } from '../support/platform/test-platform.js';
import {
  cookieOf,
  postGraphQL,
  postGraphQLBatch,
  startGraphQLApp,
  type GraphQLReply,
} from './support/graphql-test.app.js';
import { GRAPHQL_TEST_PROVIDERS, NAME } from './support/graphql-test.resolvers.js';
import { CommitsFailingOn, SlowCommits } from '../support/commit-stores.js';

const SECRETS = ['Gq7mK2vLx9Zc4pRt8yHn3wJd5sFb1aEu6iOe0uTy2W'];
const APP = 'gqlfail';
const UNAVAILABLE = { message: 'Session state is temporarily unavailable.', code: 'SESSION_UNAVAILABLE' };
/** The app gives up on a Redis operation after this long. */
const TIMEOUT = 400;

/** The one error of a reply, with its code, and that no detail of the cause leaked into it. */
function onlyError(reply: GraphQLReply) {
  expect(reply.body.errors).toHaveLength(1);
  const [error] = reply.body.errors!;
  expect(error.message).toBe(UNAVAILABLE.message);
  expect(error.extensions?.code).toBe(UNAVAILABLE.code);
  expect(JSON.stringify(reply.body)).not.toMatch(/ECONNREFUSED|timed out|ioTimeout|operationTimeout/);
  return error;
}

/** The first reply without errors, trying for up to 5 s while the app reconnects to a restarted Redis. */
async function firstAnswer(send: () => Promise<GraphQLReply>): Promise<GraphQLReply> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const reply = await send();
    if (!reply.body.errors || Date.now() > deadline) return reply;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function sessionKeyOf(cookie: string): string {
  const signed = cookie.slice(cookie.indexOf('=') + 1);
  return signed.slice(0, signed.lastIndexOf('.'));
}

describe(`GraphQL on ${TEST_PLATFORM}: commit before the response's headers`, () => {
  let app: INestApplication;
  let url: string;
  const store = new SlowCommits();
  beforeAll(
    async () => ({ app, url } = await startGraphQLApp({ secrets: SECRETS, store }, GRAPHQL_TEST_PROVIDERS)),
  );
  afterAll(() => app.close());

  it('a mutation answers only once its 150 ms commit is done: the new cookie is set and the next request reads the value', async () => {
    const first = await postGraphQL(url, 'mutation { increment }');
    // The reply carries the new session's cookie, which is set only by a finished commit.
    expect(first.body).toEqual({ data: { increment: 1 } });
    expect(store.commits).toBe(1);
    const cookie = cookieOf(first);
    const second = await postGraphQL(url, 'mutation { increment }', { cookie });
    expect(second.body).toEqual({ data: { increment: 2 } });
    expect(store.commits).toBe(2);
    expect((await postGraphQL(url, '{ counter }', { cookie })).body).toEqual({ data: { counter: 2 } });
  });
});

describe(`GraphQL on ${TEST_PLATFORM}: a batched operation's change while a sign-in's move commits`, () => {
  let app: INestApplication;
  let url: string;
  beforeAll(
    async () =>
      ({ app, url } = await startGraphQLApp(
        { secrets: SECRETS, store: new SlowCommits() },
        GRAPHQL_TEST_PROVIDERS,
      )),
  );
  afterAll(() => app.close());

  it('is saved as answered: the move does not put back the old value of a key the request changed meanwhile', async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { increment }')); // count 1, stored
    // The batch's operations run side by side: the increment runs while the sign-in's 150 ms move is committing.
    const reply = await postGraphQLBatch(
      url,
      ['mutation { signIn(user: "batched") }', 'mutation { increment: incrementLater(ms: 50) }'],
      cookie,
    );
    expect(reply.body).toEqual([{ data: { signIn: true } }, { data: { increment: 2 } }]);
    const moved = reply.setCookies.find((c) => c.startsWith('.Nest.Session='))!.split(';')[0];
    expect((await postGraphQL(url, '{ counter }', { cookie: moved })).body).toEqual({ data: { counter: 2 } });
  });

  it('a sign-out while the move commits wins: the move does not bring the old values back under a new key', async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { increment }')); // count 1, stored
    const reply = await postGraphQLBatch(
      url,
      ['mutation { signIn(user: "batched") }', 'mutation { signOutLater(ms: 50) }'],
      cookie,
    );
    expect(reply.status).toBe(200);
    // Every session cookie the reply left the browser (a new key, or none: deleted), and the old one: none holds the count.
    const kept = reply.setCookies
      .filter((c) => c.startsWith('.Nest.Session=') && !c.startsWith('.Nest.Session=;'))
      .map((c) => c.split(';')[0]);
    for (const sent of [cookie, ...kept])
      expect((await postGraphQL(url, '{ counter }', { cookie: sent })).body).toEqual({
        data: { counter: 0 },
      });
  });
});

describe(`GraphQL on ${TEST_PLATFORM}: Redis stopped and restarted`, () => {
  let server: RedisServerProcess;
  const apps: INestApplication[] = [];
  /** throwOnError (the default): an outage is an error. */
  let strict: string;
  /** throwOnError: false: the session is empty and unavailable. */
  let lenient: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    const start = async (options: Partial<SessionModuleOptions['redis']>) => {
      const started = await startGraphQLApp(
        {
          secrets: SECRETS,
          redis: {
            host: server.host,
            port: server.port,
            applicationName: APP,
            operationTimeoutInMilliseconds: TIMEOUT,
            retryTimeoutInMilliseconds: 0,
            ...options,
          },
        },
        GRAPHQL_TEST_PROVIDERS,
      );
      apps.push(started.app);
      return started.url;
    };
    strict = await start({});
    lenient = await start({ throwOnError: false });
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await server.stop();
  });

  it('store down: the resolver reports SESSION_UNAVAILABLE (decorator, and accessor behind the interceptor), the lenient app an unavailable empty session; back up: works again', async () => {
    const cookie = cookieOf(await postGraphQL(strict, 'mutation { increment setName(name: "Ada") }'));
    await server.kill();
    // Nest's exception handler logs every error a resolver throws unless it is an IntrinsicException; the
    // outage is the library's to log (once), not one error with a stack per field.
    const logger = new CaptureLogger();
    Logger.overrideLogger(logger);
    try {
      const read = await postGraphQL(strict, '{ counter }', { cookie });
      expect(read.status).toBe(200);
      expect(read.contentType).toMatch(/json/);
      expect(onlyError(read).path).toEqual(['counter']);
      expect(read.body.data ?? null).toBeNull(); // counter is non-null: the error reaches the root

      const viaService = await postGraphQL(strict, '{ serviceName }', { cookie });
      expect(viaService.status).toBe(200);
      expect(onlyError(viaService).path).toEqual(['serviceName']);
      expect(viaService.body.data).toEqual({ serviceName: null });

      const lenientRead = await postGraphQL(lenient, '{ counter visitor { available keys } }', { cookie });
      expect(lenientRead.status).toBe(200);
      expect(lenientRead.body).toEqual({ data: { counter: 0, visitor: { available: false, keys: [] } } });
      expect(
        logger.lines.filter((l) => /SessionGraphQLError|ExceptionsHandler/.test(`${l.context} ${l.message}`)),
      ).toEqual([]);
    } finally {
      Logger.overrideLogger(false);
      Logger.overrideLogger(new Logger());
      await server.restart();
    }
    // The restarted server kept nothing (no persistence): the same cookie starts an empty session, once
    // the client has reconnected (no restart of the app).
    const after = await firstAnswer(() => postGraphQL(strict, 'mutation { increment }', { cookie }));
    expect(after.body).toEqual({ data: { increment: 1 } });
    expect((await postGraphQL(strict, '{ counter }', { cookie })).body).toEqual({ data: { counter: 1 } });
  });
});

describe(`GraphQL on ${TEST_PLATFORM}: a commit that fails is never reported as done`, () => {
  let server: RedisServerProcess;
  let proxy: StallProxy;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    proxy = await StallProxy.start(server);
    ({ app, url } = await startGraphQLApp(
      {
        secrets: SECRETS,
        redis: {
          host: server.host,
          port: proxy.port,
          applicationName: APP,
          operationTimeoutInMilliseconds: TIMEOUT,
        },
      },
      GRAPHQL_TEST_PROVIDERS,
    ));
  });
  afterAll(async () => {
    await app.close();
    await proxy.stop();
    await server.stop();
  });

  const stored = (cookie: string) => server.admin().hget(`{${APP}_${sessionKeyOf(cookie)}}_Data`, NAME);

  it.each([
    [
      'committed before the first byte: the response is replaced by a 503 with a GraphQL error and no data',
      'setName',
      (reply: GraphQLReply) => {
        expect(reply.status).toBe(503);
        expect(reply.contentType).toMatch(/^application\/json/);
        onlyError(reply);
        expect(reply.body).not.toHaveProperty('data');
      },
    ],
    [
      "committed in Nest's pipeline (SessionStateInterceptor): the field's error, its value null",
      'setNameInPipeline',
      (reply: GraphQLReply) => {
        expect(reply.status).toBe(200);
        expect(onlyError(reply).path).toEqual(['setNameInPipeline']);
        expect(reply.body.data).toEqual({ setNameInPipeline: null });
      },
    ],
  ])('%s; the held write reaches Redis late and does not apply', async (_name, field, check) => {
    const established = await postGraphQL(url, 'mutation { setName(name: "initial") }');
    expect(established.status).toBe(200);
    const cookie = cookieOf(established);
    const marker = `late-${field}-${Date.now()}`;
    const hold = proxy.holdWhen(marker, TIMEOUT * 2);
    const reply = await postGraphQL(url, `mutation { ${field}(name: "${marker}") }`, { cookie });
    if (!hold.engaged) proxy.disarm();
    expect(hold.engaged).toBe(true); // the failure came from the held commit, not from a slow load
    check(reply);
    await hold.answered; // the commit ran in Redis after the reply: its deadline had passed
    expect(await stored(cookie)).toBe('initial');
    expect((await postGraphQL(url, '{ visitor { name } }', { cookie })).body).toEqual({
      data: { visitor: { name: 'initial' } },
    });
  });

  it('a batched request whose commit failed gets one error result per operation, as the drivers answer a batch', async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { setName(name: "initial") }'));
    const marker = `late-batch-${Date.now()}`;
    const hold = proxy.holdWhen(marker, TIMEOUT * 2);
    const reply = await postGraphQLBatch(
      url,
      [`mutation { setName(name: "${marker}") }`, '{ counter }'],
      cookie,
    );
    if (!hold.engaged) proxy.disarm();
    expect(hold.engaged).toBe(true);
    expect(reply.status).toBe(503);
    const result = { errors: [{ message: UNAVAILABLE.message, extensions: { code: UNAVAILABLE.code } }] };
    expect(reply.body).toEqual([result, result]);
    await hold.answered;
    expect(await stored(cookie)).toBe('initial');
  });
});

describe(`GraphQL on ${TEST_PLATFORM}: a value over a session limit`, () => {
  let app: INestApplication;
  let url: string;
  beforeAll(
    async () =>
      ({ app, url } = await startGraphQLApp(
        { secrets: SECRETS, session: { maxValueBytes: 64 } },
        GRAPHQL_TEST_PROVIDERS,
      )),
  );
  afterAll(() => app.close());

  it('behind SessionStateInterceptor: the field reports SESSION_LIMIT_EXCEEDED naming the limit, nothing is stored', async () => {
    const reply = await postGraphQL(url, `mutation { setNameInPipeline(name: "${'x'.repeat(200)}") }`);
    expect(reply.status).toBe(200);
    expect(reply.body.data).toEqual({ setNameInPipeline: null });
    expect(reply.body.errors).toHaveLength(1);
    const [error] = reply.body.errors!;
    expect(error.extensions?.code).toBe('SESSION_LIMIT_EXCEEDED');
    expect(error.message).toContain('maxValueBytes');
    expect(error.path).toEqual(['setNameInPipeline']);
    expect(reply.setCookies).toEqual([]); // nothing was stored: no session was started
  });
});

describe(`GraphQL on ${TEST_PLATFORM}: a field whose commit failed in the pipeline takes no other field's write with it`, () => {
  let app: INestApplication;
  let url: string;
  const FAIL = 'fail-this-commit';
  beforeAll(
    async () =>
      ({ app, url } = await startGraphQLApp(
        { secrets: SECRETS, store: new CommitsFailingOn(FAIL) },
        GRAPHQL_TEST_PROVIDERS,
      )),
  );
  afterAll(() => app.close());

  let failures = 0;
  /** A value the store fails the first commit of: a new one for each try. */
  const failing = () => `${FAIL}-${++failures}`;

  const established = async () => {
    const reply = await postGraphQL(url, 'mutation { setName(name: "initial") }');
    expect(reply.status).toBe(200);
    return cookieOf(reply);
  };
  const stored = async (cookie: string) =>
    (await postGraphQL(url, '{ other visitor { name } }', { cookie })).body;

  it('alone in a mutation: the field reports the failure, the rest of the response stands', async () => {
    const cookie = await established();
    const reply = await postGraphQL(
      url,
      `mutation { a: setNameInPipeline(name: "${failing()}") t: tagged }`,
      {
        cookie,
      },
    );
    expect(reply.status).toBe(200);
    expect(onlyError(reply).path).toEqual(['a']);
    expect(reply.body.data).toEqual({ a: null, t: null });
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it.each([
    [
      'a later field writes (it would be answered as done, its write never tried)',
      `a: setNameInPipeline(name: "${failing()}") x: setOther(value: "later")`,
    ],
    [
      'an earlier field wrote (the failed commit carried its write)',
      `x: setOther(value: "earlier") a: setNameInPipeline(name: "${failing()}")`,
    ],
  ])('when %s: the response is the 503, no field answered as done', async (_case, fields) => {
    const cookie = await established();
    const reply = await postGraphQL(url, `mutation { ${fields} }`, { cookie });
    expect(reply.status).toBe(503);
    onlyError(reply);
    expect(reply.body).not.toHaveProperty('data');
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it("a later field's explicit commit (session.commit(), UserSessions.bind()) does not apply the failed field's write", async () => {
    const cookie = await established();
    const reply = await postGraphQL(
      url,
      `mutation { a: setNameInPipeline(name: "${failing()}") c: commitNow }`,
      {
        cookie,
      },
    );
    expect(reply.body.data).toEqual({ a: null, c: null });
    expect(reply.body.errors?.map((error) => error.path)).toEqual([['a'], ['c']]);
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it("a field's own explicit commit failed, behind the interceptor: the field reports it, the write is not tried again", async () => {
    const cookie = await established();
    const reply = await postGraphQL(url, `mutation { a: setNameAndCommit(name: "${failing()}") t: tagged }`, {
      cookie,
    });
    expect(reply.status).toBe(200);
    expect(onlyError(reply).path).toEqual(['a']);
    expect(reply.body.data).toEqual({ a: null, t: null });
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it('an explicit commit failed without the interceptor (a field may have reported it): the 503, the write not tried again', async () => {
    const cookie = await established();
    const reply = await postGraphQL(url, `mutation { x: setOther(value: "${failing()}") c: commitNow }`, {
      cookie,
    });
    expect(reply.status).toBe(503);
    onlyError(reply);
    expect(reply.body).not.toHaveProperty('data');
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it("a later field's sign-in, whose bind() the failure refuses: the 503, and the visitor's session is not deleted behind it", async () => {
    const cookie = await established();
    const reply = await postGraphQL(
      url,
      `mutation { a: setNameInPipeline(name: "${failing()}") b: signIn(user: "amy") }`,
      {
        cookie,
      },
    );
    expect(reply.status).toBe(503);
    expect(reply.setCookies).toEqual([]);
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it("a failed explicit commit without the interceptor: a later field's commit or sign-in does not land it, the 503", async () => {
    const cookie = await established();
    const reply = await postGraphQL(
      url,
      `mutation { x: setOther(value: "${failing()}") c: commitNow d: commitNow b: signIn(user: "amy") }`,
      { cookie },
    );
    expect(reply.status).toBe(503);
    expect(reply.setCookies).toEqual([]);
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });

  it("a field's own sign-in whose bind() failed: the field reports it, and the session is abandoned as on REST (signed out, cookie deleted)", async () => {
    const cookie = await established();
    const reply = await postGraphQL(url, `mutation { s: signInNamed(user: "amy", name: "${failing()}") }`, {
      cookie,
    });
    expect(reply.body.data).toEqual({ s: null });
    expect(reply.body.errors?.map((error) => error.path)).toEqual([['s']]);
    expect(reply.setCookies.filter((set) => set.startsWith('.Nest.Session=;'))).toHaveLength(1);
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: null } } });
  });

  it("when an earlier field set TempData (the failure rolls the request's TempData back): the 503, no TempData cookie", async () => {
    const cookie = await established();
    const reply = await postGraphQL(
      url,
      `mutation { f: flash(message: "hi") a: setNameInPipeline(name: "${failing()}") }`,
      {
        cookie,
      },
    );
    expect(reply.status).toBe(503);
    onlyError(reply);
    expect(reply.setCookies.filter((set) => set.startsWith('.Nest.TempData'))).toEqual([]);
    expect((await postGraphQL(url, '{ message }', { cookie })).body).toEqual({ data: { message: null } });
  });

  it('in a batch (its operations run side by side): one 503 result per operation', async () => {
    const cookie = await established();
    const reply = await postGraphQLBatch(
      url,
      [`mutation { setNameInPipeline(name: "${failing()}") }`, 'mutation { setOther(value: "batched") }'],
      cookie,
    );
    expect(reply.status).toBe(503);
    const result = { errors: [{ message: UNAVAILABLE.message, extensions: { code: UNAVAILABLE.code } }] };
    expect(reply.body).toEqual([result, result]);
    expect(await stored(cookie)).toEqual({ data: { other: null, visitor: { name: 'initial' } } });
  });
});

describe(`GraphQL on ${TEST_PLATFORM}: an explicit commit that failed under throwOnError: false`, () => {
  let app: INestApplication;
  let url: string;
  const FAIL = 'fail-this-lenient-commit';
  beforeAll(async () => {
    // A store that fails the first commit of a marked value and answers failures by logging (no error reply).
    const store = Object.assign(new CommitsFailingOn(FAIL), { throwOnError: false });
    ({ app, url } = await startGraphQLApp({ secrets: SECRETS, store }, GRAPHQL_TEST_PROVIDERS));
  });
  afterAll(() => app.close());

  it("the other fields' answers stand, TempData included", async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { setName(name: "initial") }'));
    const reply = await postGraphQL(
      url,
      `mutation { f: flash(message: "Saved!") x: setOther(value: "${FAIL}-2") c: commitNow }`,
      { cookie },
    );
    expect(reply.status).toBe(200);
    expect(reply.body.data).toEqual({ f: true, x: `${FAIL}-2`, c: null });
    expect(reply.setCookies.filter((set) => /^\.Nest\.TempData=[^;]/.test(set))).toHaveLength(1);
  });

  it('the field that reported it answers as it returned, and the write is not saved (not tried again at the end)', async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { setName(name: "initial") }'));
    const reply = await postGraphQL(url, `mutation { x: setOther(value: "${FAIL}-1") c: commitNow }`, {
      cookie,
    });
    expect(reply.status).toBe(200);
    expect(reply.body.data).toEqual({ x: `${FAIL}-1`, c: null });
    expect(reply.body.errors?.map((error) => error.path)).toEqual([['c']]);
    expect((await postGraphQL(url, '{ other visitor { name } }', { cookie })).body).toEqual({
      data: { other: null, visitor: { name: 'initial' } },
    });
  });
});
