import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { SessionModule, type SessionModuleOptions } from 'nest-session-state';
import { createPlatformApp, TEST_PLATFORM, type TestPlatform } from '../../support/platform/test-platform.js';

/**
 * GraphQLModule for the test platform, code first with the schema in memory: Apollo (the Express 5
 * integration) on Express, Mercurius on Fastify, each with the driver's default context.
 */
export async function graphQLModuleFor(
  platform: TestPlatform = TEST_PLATFORM,
  { subscriptions = false }: { subscriptions?: boolean } = {},
): Promise<DynamicModule> {
  const { GraphQLModule } = await import('@nestjs/graphql');
  if (platform === 'fastify') {
    const { MercuriusDriver } = await import('@nestjs/mercurius');
    return GraphQLModule.forRoot({
      driver: MercuriusDriver,
      autoSchemaFile: true,
      graphiql: false,
      allowBatchedQueries: true,
      // fullWsTransport: queries and mutations over the WebSocket too, as graphql-ws serves them on Apollo.
      subscription: subscriptions ? { fullWsTransport: true } : false,
    });
  }
  const { ApolloDriver } = await import('@nestjs/apollo');
  return GraphQLModule.forRoot({
    driver: ApolloDriver,
    autoSchemaFile: true,
    graphiql: false,
    allowBatchedHttpRequests: true,
    ...(subscriptions ? { subscriptions: { 'graphql-ws': true } } : {}),
  });
}

/** A listening app with SessionModule and GraphQL on the test platform. */
export async function startGraphQLApp(
  options: SessionModuleOptions,
  providers: Type[],
  graphql: { subscriptions?: boolean } = {},
): Promise<{ app: INestApplication; url: string }> {
  @Module({
    imports: [SessionModule.forRoot(options), await graphQLModuleFor(TEST_PLATFORM, graphql)],
    providers,
  })
  class GraphQLTestModule {}
  const ref = await Test.createTestingModule({ imports: [GraphQLTestModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

/** A GraphQL error as the response lists it. */
export interface GraphQLErrorEntry {
  message: string;
  path?: string[];
  extensions?: { code?: string; [key: string]: unknown };
}

/** What came back for one GraphQL request over HTTP. */
export interface GraphQLReply {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: GraphQLErrorEntry[] };
  /** The Set-Cookie headers of the response. */
  setCookies: string[];
  contentType: string | null;
}

/** POSTs one operation to `/graphql` (as `application/json`), with the given Cookie header. */
export async function postGraphQL(
  url: string,
  query: string,
  init: { cookie?: string; variables?: Record<string, unknown> } = {},
): Promise<GraphQLReply> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(init.cookie ? { cookie: init.cookie } : {}),
    },
    body: JSON.stringify({ query, variables: init.variables }),
  });
  const text = await res.text();
  let body: GraphQLReply['body'];
  try {
    body = JSON.parse(text) as GraphQLReply['body'];
  } catch {
    throw new Error(
      `POST /graphql answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
    );
  }
  return {
    status: res.status,
    body,
    setCookies: res.headers.getSetCookie(),
    contentType: res.headers.get('content-type'),
  };
}

/** POSTs a batch (an array of operations) to `/graphql`; the body is whatever JSON came back. */
export async function postGraphQLBatch(
  url: string,
  queries: string[],
  cookie: string,
): Promise<{ status: number; body: unknown; setCookies: string[] }> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', cookie },
    body: JSON.stringify(queries.map((query) => ({ query }))),
  });
  return { status: res.status, body: await res.json(), setCookies: res.headers.getSetCookie() };
}

/** `name=value` of the cookie `name` a reply set (for the next request's Cookie header). */
export function cookieOf(reply: GraphQLReply, name = '.Nest.Session'): string {
  const found = reply.setCookies.find((c) => c.startsWith(`${name}=`));
  if (!found) throw new Error(`the reply set no ${name} cookie: ${JSON.stringify(reply.setCookies)}`);
  return found.split(';')[0];
}
