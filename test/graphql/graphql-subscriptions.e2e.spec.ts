/**
 * Subscriptions run over a WebSocket (graphql-ws's graphql-transport-ws protocol, which Apollo's driver
 * and Mercurius both serve): no HTTP request, so no session. A subscription that takes @Session() gets
 * SessionRequiresHttpError saying so; one that does not works beside it. So do queries and mutations sent over
 * the WebSocket (graphql-ws runs them; Mercurius with subscription.fullWsTransport): their context holds the
 * connection's upgrade request, which Fastify routes through the library like an HTTP request, with a response
 * never written: a mutation there used to be answered as done and never saved.
 */
import type { INestApplication } from '@nestjs/common';
import { UseInterceptors } from '@nestjs/common';
import { Args, Mutation, Query, Resolver, Subscription } from '@nestjs/graphql';
import { Session, SessionAccessor, SessionStateInterceptor } from 'nest-session-state';
import WebSocket from 'ws';
import { TEST_PLATFORM } from '../support/platform/test-platform.js';
import { cookieOf, postGraphQL, startGraphQLApp } from './support/graphql-test.app.js';
import { GRAPHQL_TEST_PROVIDERS, VisitsService } from './support/graphql-test.resolvers.js';

/** An event stream of one event. */
async function* once<T>(payload: T): AsyncGenerator<T> {
  yield await Promise.resolve(payload);
}

@Resolver()
class TicksResolver {
  constructor(
    private readonly visits: VisitsService,
    private readonly sessions: SessionAccessor,
  ) {}

  /** The name, read through SessionAccessor in a subscription. */
  @Subscription(() => String)
  async *accessorTicks(): AsyncGenerator<{ accessorTicks: string }> {
    yield { accessorTicks: (await this.sessions.load()).getString('name') ?? 'anonymous' };
  }

  /** A rename through SessionAccessor (VisitsService), committed by the interceptor right after the field. */
  @Mutation(() => String)
  @UseInterceptors(SessionStateInterceptor)
  renameInPipeline(@Args('name') name: string): Promise<string> {
    return this.visits.rename(name);
  }

  @Subscription(() => String)
  plainTicks(): AsyncGenerator<{ plainTicks: string }> {
    return once({ plainTicks: 'tick' });
  }

  @Query(() => String)
  plainPing(): string {
    return 'pong';
  }

  @Subscription(() => String)
  sessionTicks(@Session() session: Session): AsyncGenerator<{ sessionTicks: string }> {
    return once({ sessionTicks: session.getString('name') ?? 'anonymous' });
  }
}

/** What a subscription sent back before it completed: its `next` payloads and its `error`, if any. */
interface SubscriptionOutcome {
  next: { data?: unknown; errors?: { message: string }[] }[];
  error?: { message: string }[];
}

/**
 * Runs one operation (a subscription, or a query or mutation) over graphql-transport-ws until it completes, errs, or
 * sent one result; the upgrade request carries `cookie`.
 */
function subscribe(url: string, query: string, cookie = ''): Promise<SubscriptionOutcome> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', {
    headers: cookie ? { cookie } : {},
  });
  const outcome: SubscriptionOutcome = { next: [] };
  return new Promise<SubscriptionOutcome>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in 5 s: ${JSON.stringify(outcome)}`)), 5000);
    const done = () => {
      clearTimeout(timer);
      socket.close();
      resolve(outcome);
    };
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    socket.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString('utf8')) as { type: string; id?: string; payload?: unknown };
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
      } else if (message.type === 'next') {
        outcome.next.push(message.payload as SubscriptionOutcome['next'][number]);
        done();
      } else if (message.type === 'error') {
        outcome.error = message.payload as SubscriptionOutcome['error'];
        done();
      } else if (message.type === 'complete') {
        done();
      }
    });
  });
}

/** Every error message of an outcome, wherever the server put it. */
const messagesOf = (outcome: SubscriptionOutcome) => [
  ...(outcome.error ?? []).map((e) => e.message),
  ...outcome.next.flatMap((n) => (n.errors ?? []).map((e) => e.message)),
];

describe(`GraphQL subscriptions on ${TEST_PLATFORM} (over WebSocket)`, () => {
  let app: INestApplication;
  let url: string;
  beforeAll(
    async () =>
      ({ app, url } = await startGraphQLApp({}, [...GRAPHQL_TEST_PROVIDERS, TicksResolver], {
        subscriptions: true,
      })),
  );
  afterAll(() => app.close());

  it('a subscription without session state works (control)', async () => {
    const outcome = await subscribe(url, 'subscription { plainTicks }');
    expect(outcome).toEqual({ next: [{ data: { plainTicks: 'tick' } }] });
  });

  it('@Session() in a subscription: SessionRequiresHttpError saying subscriptions have no HTTP request', async () => {
    const outcome = await subscribe(url, 'subscription { sessionTicks }');
    const messages = messagesOf(outcome);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('@Session() needs an HTTP request');
    expect(messages[0]).toContain('"graphql subscription" context');
    expect(messages[0]).toContain('Subscriptions deliver their events over a WebSocket');
    expect(outcome.next.some((n) => n.data && (n.data as Record<string, unknown>).sessionTicks)).toBe(false);
  });

  it('a query without session state over the WebSocket works (control)', async () => {
    expect(await subscribe(url, '{ plainPing }')).toEqual({ next: [{ data: { plainPing: 'pong' } }] });
  });

  it('@Session() in a mutation over the WebSocket: SessionRequiresHttpError, and the session is not changed (nor answered as changed)', async () => {
    const first = await postGraphQL(url, 'mutation { increment }');
    expect(first.body).toEqual({ data: { increment: 1 } });
    const cookie = cookieOf(first);
    const outcome = await subscribe(url, 'mutation { increment }', cookie);
    const messages = messagesOf(outcome);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('@Session() needs an HTTP request');
    expect(messages[0]).toContain('"graphql over WebSocket" context');
    expect(messages[0]).toContain('Send the operations that use session state over HTTP');
    expect(outcome.next.some((n) => n.data && (n.data as Record<string, unknown>).increment)).toBe(false);
    expect((await postGraphQL(url, '{ counter }', { cookie })).body).toEqual({ data: { counter: 1 } });
  });

  it.each([
    ['a mutation', 'mutation { rename(name: "ws") }', 'rename'],
    [
      'a mutation behind SessionStateInterceptor',
      'mutation { renameInPipeline(name: "ws") }',
      'renameInPipeline',
    ],
    ['a subscription', 'subscription { accessorTicks }', 'accessorTicks'],
  ])(
    'SessionAccessor in %s over the WebSocket: refused as outside a request (no session of the upgrade request), nothing changed',
    async (_name, operation, field) => {
      const cookie = cookieOf(await postGraphQL(url, 'mutation { rename(name: "http") }'));
      const outcome = await subscribe(url, operation, cookie);
      const messages = messagesOf(outcome);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toContain('Session has not been configured for this application or request');
      expect(outcome.next.some((n) => n.data && (n.data as Record<string, unknown>)[field])).toBe(false);
      expect((await postGraphQL(url, '{ serviceName }', { cookie })).body).toEqual({
        data: { serviceName: 'http' },
      });
    },
  );

  it('@Session() in a query over the WebSocket: SessionRequiresHttpError (not a session loaded once per connection)', async () => {
    const cookie = cookieOf(await postGraphQL(url, 'mutation { increment }'));
    const messages = messagesOf(await subscribe(url, '{ counter }', cookie));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('"graphql over WebSocket" context');
  });
});
