/**
 * Where a decorator finds the HTTP request of a GraphQL resolver, and the errors where there is none:
 * subscriptions (over a WebSocket), GraphQL contexts without the request, and the WebSocket gateway and
 * microservice contexts, which keep their own error.
 */
import type { ExecutionContext } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import {
  Items,
  RequestItems,
  Session,
  SessionNotConfiguredError,
  SessionRequiresHttpError,
  TempData,
} from 'nest-session-state';
import { failureOf, nonHttpContext, paramFactoryOf } from '../items/support/non-http-context.js';

const REQUEST_STATE = Symbol.for('nest-session-state.request-state');

class Resolvers {
  field(): void {}
}

/** The ExecutionContext Nest builds for a resolver: (root, args, GraphQL context, info). */
function graphQLContext(context: unknown, operation = 'query'): ExecutionContext {
  const info = { fieldName: 'field', operation: { operation } };
  const host = new ExecutionContextHost([{}, {}, context, info], Resolvers, Resolvers.prototype.field);
  host.setType('graphql');
  return host;
}

/** A request as SessionModule's entry leaves it: its state hangs on it. */
function enteredRequest(items: RequestItems): object {
  return { headers: {}, [REQUEST_STATE]: { items } };
}

const items = paramFactoryOf(Items());
const decorators: [string, ParameterDecorator][] = [
  ['@Session()', Session()],
  ['@TempData()', TempData()],
  ['@Items()', Items()],
];

describe('GraphQL contexts', () => {
  it.each([
    ['Apollo and Mercurius (req)', (req: object) => ({ req })],
    ['a context that names it request', (req: object) => ({ request: req })],
    ["Mercurius's reply", (req: object) => ({ reply: { request: req } })],
    [
      'a req without state, then the reply (the first entered request wins)',
      (req: object) => ({ req: {}, reply: { request: req } }),
    ],
  ])('finds the request in the GraphQL context: %s', (_name, contextOf) => {
    const bag = new RequestItems();
    expect(items.factory(items.data, graphQLContext(contextOf(enteredRequest(bag))))).toBe(bag);
  });

  it.each(decorators)(
    '%s in a subscription: SessionRequiresHttpError saying subscriptions have no HTTP request, even when the context has one',
    async (what, decorator) => {
      const { factory, data } = paramFactoryOf(decorator);
      const context = graphQLContext({ req: enteredRequest(new RequestItems()) }, 'subscription');
      const error = await failureOf(() => factory(data, context));
      expect(error).toBeInstanceOf(SessionRequiresHttpError);
      const { message } = error as Error;
      expect(message).toContain(`${what} needs an HTTP request`);
      expect(message).toContain('"graphql subscription" context');
      expect(message).toContain('Subscriptions deliver their events over a WebSocket');
      expect(message).toContain('in a query or mutation');
    },
  );

  it.each([
    [
      "Mercurius's fullWsTransport (the upgrade request, entered by Fastify's routing)",
      (bag: RequestItems) => ({
        request: {
          raw: { upgrade: true, headers: { upgrade: 'WebSocket' } },
          [REQUEST_STATE]: { items: bag },
        },
      }),
    ],
    [
      "graphql-ws's context (which @nestjs/apollo puts in req)",
      () => ({
        req: {
          connectionParams: {},
          extra: { request: { upgrade: true, headers: { upgrade: 'websocket' } } },
        },
      }),
    ],
  ])(
    'an operation sent over a WebSocket, %s: SessionRequiresHttpError saying to send it over HTTP',
    async (_name, contextOf) => {
      const error = await failureOf(() =>
        items.factory(items.data, graphQLContext(contextOf(new RequestItems()))),
      );
      expect(error).toBeInstanceOf(SessionRequiresHttpError);
      const { message } = error as Error;
      expect(message).toContain('@Items() needs an HTTP request');
      expect(message).toContain('"graphql over WebSocket" context');
      expect(message).toContain('Send the operations that use session state over HTTP');
    },
  );

  it('a plain HTTP request that carries an Upgrade: websocket header (not delivered as an upgrade) is found as any other', () => {
    const bag = new RequestItems();
    const request = { upgrade: false, headers: { upgrade: 'websocket' }, [REQUEST_STATE]: { items: bag } };
    expect(items.factory(items.data, graphQLContext({ req: request }))).toBe(bag);
  });

  it.each([
    ['no context at all', undefined],
    ['a context without the request', { user: 'ada' }],
  ])('%s: SessionRequiresHttpError naming the GraphQLModule context option', async (_name, context) => {
    const error = await failureOf(() => items.factory(items.data, graphQLContext(context)));
    expect(error).toBeInstanceOf(SessionRequiresHttpError);
    const { message } = error as Error;
    expect(message).toContain('The GraphQL context has no HTTP request');
    expect(message).toContain('context: ({ req }) => ({ req })');
  });

  it('a request that did not pass through SessionModule: SessionNotConfiguredError, as over HTTP', async () => {
    const error = await failureOf(() => items.factory(items.data, graphQLContext({ req: { headers: {} } })));
    expect(error).toBeInstanceOf(SessionNotConfiguredError);
    expect((error as Error).message).toContain('(used by @Items())');
  });

  describe.each(['ws', 'rpc'] as const)('a "%s" context keeps its error', (type) => {
    // In a gateway @Session() is the client's snapshot (test/websocket); the others still refuse there.
    it.each(type === 'ws' ? decorators.filter(([what]) => what !== '@Session()') : decorators)(
      '%s: SessionRequiresHttpError, keep per-connection state on the socket',
      async (what, decorator) => {
        const { factory, data } = paramFactoryOf(decorator);
        const error = await failureOf(() => factory(data, nonHttpContext(type)));
        expect(error).toBeInstanceOf(SessionRequiresHttpError);
        expect((error as Error).message).toContain(`${what} needs an HTTP request`);
        expect((error as Error).message).toContain(`"${type}" context`);
        expect((error as Error).message).toContain('keep per-connection state on the socket');
      },
    );
  });
});
