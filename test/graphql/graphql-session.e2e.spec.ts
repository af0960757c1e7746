/**
 * Session, TempData and items in GraphQL resolvers, over HTTP: Apollo on Express, Mercurius on Fastify
 * (NSS_TEST_PLATFORM), on the memory store and on a real Redis.
 */
import type { INestApplication } from '@nestjs/common';
import { MemorySessionStore, type SessionData, type SessionModuleOptions } from 'nest-session-state';
import { commandStats, diffStats, RedisServerProcess } from '../support/redis/index.js';
import { TEST_PLATFORM } from '../support/platform/test-platform.js';
import { cookieOf, postGraphQL, startGraphQLApp, type GraphQLReply } from './support/graphql-test.app.js';
import { GRAPHQL_TEST_PROVIDERS } from './support/graphql-test.resolvers.js';

/** A Cookie header with every cookie a reply set. */
const cookiesOf = (reply: GraphQLReply) => reply.setCookies.map((c) => c.split(';')[0]).join('; ');

const SECRETS = ['Gq7mK2vLx9Zc4pRt8yHn3wJd5sFb1aEu6iOe0uTy2W'];

/** A memory store that counts the loads that reach it (a subclass is not loaded in-process). */
class CountingStore extends MemorySessionStore {
  loads = 0;
  override load(key: string, idle: number): Promise<SessionData | undefined> {
    this.loads++;
    return super.load(key, idle);
  }
}

interface StoreCase {
  options(): SessionModuleOptions;
  /** Loads the store served since the last call (Redis: load and commit scripts). */
  loadsSince(): Promise<number>;
  /** What loadsSince() counts for a request that loads once and commits once. */
  readonly loadAndCommit: number;
}

const memory = (): StoreCase => {
  const store = new CountingStore();
  let seen = 0;
  return {
    options: () => ({ secrets: SECRETS, store }),
    loadsSince: () => {
      const loads = store.loads - seen;
      seen = store.loads;
      return Promise.resolve(loads);
    },
    loadAndCommit: 1,
  };
};

let redis: RedisServerProcess | undefined;
const redisStore = (): StoreCase => {
  let before: Record<string, number> | undefined;
  return {
    options: () => ({
      secrets: SECRETS,
      redis: { host: redis!.host, port: redis!.port, applicationName: 'gql' },
    }),
    // A load is one EVALSHA of the load script; a query that changes nothing commits nothing.
    loadsSince: async () => {
      const now = await commandStats(redis!.admin());
      const calls = before ? (diffStats(before, now).evalsha ?? 0) : 0;
      before = await commandStats(redis!.admin());
      return calls;
    },
    loadAndCommit: 2,
  };
};

beforeAll(async () => {
  redis = await RedisServerProcess.start();
});
afterAll(() => redis?.stop());

describe.each([
  ['memory', memory],
  ['redis', redisStore],
])(`GraphQL on ${TEST_PLATFORM} (%s store)`, (_name, makeStore) => {
  let app: INestApplication;
  let url: string;
  let store: StoreCase;

  beforeAll(async () => {
    store = makeStore();
    ({ app, url } = await startGraphQLApp(store.options(), GRAPHQL_TEST_PROVIDERS));
  });
  afterAll(() => app.close());

  it('a mutation writes the session and sets its cookie; a query reads it back in the next request', async () => {
    const first = await postGraphQL(url, 'mutation { increment }');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ data: { increment: 1 } });
    const cookie = cookieOf(first);
    expect((await postGraphQL(url, 'mutation { increment }', { cookie })).body).toEqual({
      data: { increment: 2 },
    });
    const read = await postGraphQL(url, '{ counter }', { cookie });
    expect(read.body).toEqual({ data: { counter: 2 } });
    expect(read.setCookies).toEqual([]); // an established session's cookie is not sent again
    // Another visitor has its own session.
    expect((await postGraphQL(url, '{ counter }')).body).toEqual({ data: { counter: 0 } });
  });

  it('the field resolvers of one operation share one loaded session: one store load for the whole query', async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { increment rename(name: "Ada") }'));
    await store.loadsSince();
    const read = await postGraphQL(
      url,
      '{ counter visitor { name count keys available } again: visitor { count } }',
      {
        cookie,
      },
    );
    expect(read.body).toEqual({
      data: {
        counter: 1,
        visitor: { name: 'Ada', count: 1, keys: expect.arrayContaining(['count', 'name']), available: true },
        again: { count: 1 },
      },
    });
    expect(await store.loadsSince()).toBe(1);
    // Two mutation fields that each read and write: one load and one commit for the request.
    await postGraphQL(url, 'mutation { increment again: increment }', { cookie });
    expect(await store.loadsSince()).toBe(store.loadAndCommit);
    expect((await postGraphQL(url, '{ counter }', { cookie })).body).toEqual({ data: { counter: 3 } });
  });

  it('TempData in resolvers: set by a mutation, kept until read, gone after it', async () => {
    const set = await postGraphQL(url, 'mutation { flash(message: "Customer Ada added") }');
    expect(set.body).toEqual({ data: { flash: true } });
    const cookie = cookiesOf(set);
    expect(cookie).toContain('.Nest.TempData=');
    const peeked = await postGraphQL(url, '{ peekMessage }', { cookie });
    expect(peeked.body).toEqual({ data: { peekMessage: 'Customer Ada added' } });
    const read = await postGraphQL(url, '{ message }', { cookie });
    expect(read.body).toEqual({ data: { message: 'Customer Ada added' } });
    // Reading marked it for deletion: the TempData cookie is deleted with this response.
    expect(read.setCookies.some((c) => c.startsWith('.Nest.TempData=;'))).toBe(true);
    expect((await postGraphQL(url, '{ message }')).body).toEqual({ data: { message: null } });
  });

  it("a resolver that throws rolls back the request's TempData changes, other resolvers' included", async () => {
    const cookie = cookiesOf(await postGraphQL(url, 'mutation { flash(message: "before") }'));
    const failed = await postGraphQL(url, 'mutation { flash(message: "a") flashThenFail(message: "b") }', {
      cookie,
    });
    expect(failed.body.data).toEqual({ flash: true, flashThenFail: null });
    expect(failed.body.errors?.map((e) => e.path)).toEqual([['flashThenFail']]);
    expect(failed.setCookies.filter((c) => c.startsWith('.Nest.TempData'))).toEqual([]); // unchanged
    expect((await postGraphQL(url, '{ message }', { cookie })).body).toEqual({ data: { message: 'before' } });
  });

  it('request items: the resolvers of one request share one bag, and the next request starts empty', async () => {
    // Mutation fields run one after the other: the second reads what the first set.
    const reply = await postGraphQL(url, 'mutation { tag(value: "blue") tagged }');
    expect(reply.body).toEqual({ data: { tag: true, tagged: 'blue' } });
    expect((await postGraphQL(url, 'mutation { tagged }')).body).toEqual({ data: { tagged: null } });
  });

  it("accessors in a resolver's injected service: session, TempData and items of the same request", async () => {
    const renamed = await postGraphQL(url, 'mutation { rename(name: "Grace") } ');
    expect(renamed.body).toEqual({ data: { rename: 'Grace' } });
    const cookie = cookiesOf(renamed);
    const read = await postGraphQL(url, '{ visitor { name } message }', { cookie });
    expect(read.body).toEqual({ data: { visitor: { name: 'Grace' }, message: 'renamed to Grace' } });
    // The service's item is visible to a later field of the same request, and to no other request.
    const both = await postGraphQL(url, 'mutation { rename(name: "Hopper") whoRenamed }');
    expect(both.body).toEqual({ data: { rename: 'Hopper', whoRenamed: 'service' } });
    expect((await postGraphQL(url, 'mutation { whoRenamed }')).body).toEqual({ data: { whoRenamed: null } });
  });
});
