import type { ExecutionContext } from '@nestjs/common';
import { SessionRequiresHttpError } from '../errors/session.errors.js';
import { isWebSocketUpgrade } from '../http/websocket-upgrade.js';
import { stateOfRequest } from './request-context.js';
import type { RequestState } from './request-state.js';

/**
 * The GraphQL context object (argument 2 of a `graphql` execution context) as @nestjs/graphql's drivers
 * fill it: Apollo and Mercurius both put the platform's request in `req` (also when the app has its own
 * `context` option, as long as it returns an object); Mercurius adds its `reply`. Read by shape: the
 * library does not depend on any GraphQL package.
 */
interface GraphQLContextLike {
  readonly req?: unknown;
  readonly request?: unknown;
  readonly reply?: { readonly request?: unknown } | null;
}

/** GraphQL's resolve info (argument 3): only the operation's kind and the field's path are read. */
interface ResolveInfoLike {
  readonly operation?: { readonly operation?: string } | null;
  readonly path?: { readonly prev?: unknown } | null;
}

const SUBSCRIPTION =
  "Subscriptions deliver their events over a WebSocket, with no HTTP request to load the session from and no response to commit it to, so session state is not available in them. Read what the subscription needs in a query or mutation (or from the WebSocket's connection parameters) and keep per-subscription state in the subscription's own context.";

const NO_REQUEST =
  'The GraphQL context has no HTTP request (no "req", "request" or "reply.request"). The Apollo and Mercurius drivers of @nestjs/graphql put it in "req" unless the GraphQLModule "context" option returns something other than an object: return an object, e.g. context: ({ req }) => ({ req }).';

const OVER_WEBSOCKET =
  "Queries and mutations sent over a WebSocket (graphql-ws, Mercurius's subscription.fullWsTransport) run without an HTTP request of their own: the context holds the connection's upgrade request, which has no response to commit a session to, and every operation of the connection would share what it loaded (a change answered as done and never saved, reads that never see later changes). Send the operations that use session state over HTTP (in the client, a split link: subscriptions over the WebSocket, queries and mutations over HTTP).";

/** The request state of a GraphQL resolver's HTTP request, or undefined (a subscription, no request, no SessionModule). */
export function findGraphQLRequestState(context: ExecutionContext): RequestState | undefined {
  if (isSubscription(context)) return undefined;
  const requests = requestsOf(context);
  return requests.some(isOverWebSocket) ? undefined : stateIn(requests);
}

/** The request state of the first of `requests` that passed through SessionModule. */
function stateIn(requests: readonly object[]): RequestState | undefined {
  for (const request of requests) {
    const state = stateOfRequest<RequestState>(request);
    if (state) return state;
  }
  return undefined;
}

/**
 * The request state for a decorator in a GraphQL resolver (queries, mutations, field resolvers: one state
 * per HTTP request, so every resolver of the request shares one loaded session); undefined when the
 * request did not pass through SessionModule.
 * @throws SessionRequiresHttpError for subscriptions, for operations sent over a WebSocket, and for GraphQL
 * contexts without the HTTP request.
 */
export function graphQLRequestStateOf(context: ExecutionContext, what: string): RequestState | undefined {
  if (isSubscription(context)) throw new SessionRequiresHttpError(what, 'graphql subscription', SUBSCRIPTION);
  const requests = requestsOf(context);
  if (requests.some(isOverWebSocket))
    throw new SessionRequiresHttpError(what, 'graphql over WebSocket', OVER_WEBSOCKET);
  const state = stateIn(requests);
  if (state) return state;
  if (requests.length > 0) return undefined;
  throw new SessionRequiresHttpError(what, 'graphql', NO_REQUEST);
}

/** The request objects the GraphQL context carries, where the drivers put them (see GraphQLContextLike). */
function requestsOf(context: ExecutionContext): object[] {
  const graphql = context.getArgByIndex<GraphQLContextLike | null | undefined>(2);
  if (!graphql) return [];
  const requests: object[] = [];
  for (const candidate of [graphql.req, graphql.request, graphql.reply?.request]) {
    const request = asObject(candidate);
    if (request) requests.push(request);
  }
  return requests;
}

/** graphql-ws's context (which @nestjs/apollo puts in `req`): the upgrade request is `extra.request`. */
interface GraphQLWsContextLike {
  readonly extra?: { readonly request?: object | null } | null;
}

/**
 * A WebSocket's upgrade request (Express's, Fastify's or Node's request object), or graphql-ws's context holding it:
 * what the GraphQL context of an operation sent over the WebSocket holds.
 */
function isOverWebSocket(request: object): boolean {
  return isWebSocketUpgrade(request) || isWebSocketUpgrade((request as GraphQLWsContextLike).extra?.request);
}

/**
 * Whether a failed commit right after this resolver would hold its own changes alone: a root field of a mutation
 * (GraphQL runs those one at a time, each with its sub-fields, so no other resolver runs beside it) in a request of
 * one operation (a batch's operations run side by side), with nothing left unsaved before it: session changes not
 * committed, or TempData changed (another field reported them as done; the failure would take them down with it:
 * its commit carries the session's, and a failed request rolls TempData back).
 */
export function writesAlone(context: ExecutionContext, state: RequestState): boolean {
  const info = context.getArgByIndex<ResolveInfoLike | undefined>(3);
  return (
    info?.operation?.operation === 'mutation' &&
    info.path?.prev === undefined &&
    !Array.isArray(state.exchange.requestBody) &&
    !state.hasUnsavedChanges
  );
}

function isSubscription(context: ExecutionContext): boolean {
  return context.getArgByIndex<ResolveInfoLike | undefined>(3)?.operation?.operation === 'subscription';
}

function asObject(value: unknown): object | undefined {
  return typeof value === 'object' && value !== null ? value : undefined;
}
