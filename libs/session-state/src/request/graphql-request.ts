import type { ExecutionContext } from '@nestjs/common';
import { SessionRequiresHttpError } from '../errors/session.errors.js';
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

/** The request state of a GraphQL resolver's HTTP request, or undefined (a subscription, no request, no SessionModule). */
export function findGraphQLRequestState(context: ExecutionContext): RequestState | undefined {
  if (isSubscription(context)) return undefined;
  const graphql = context.getArgByIndex<GraphQLContextLike | null | undefined>(2);
  if (!graphql) return undefined;
  return (
    stateOfRequest<RequestState>(asObject(graphql.req)) ??
    stateOfRequest<RequestState>(asObject(graphql.request)) ??
    stateOfRequest<RequestState>(asObject(graphql.reply?.request))
  );
}

/**
 * The request state for a decorator in a GraphQL resolver (queries, mutations, field resolvers: one state
 * per HTTP request, so every resolver of the request shares one loaded session); undefined when the
 * request did not pass through SessionModule.
 * @throws SessionRequiresHttpError for subscriptions and for GraphQL contexts without the HTTP request.
 */
export function graphQLRequestStateOf(context: ExecutionContext, what: string): RequestState | undefined {
  if (isSubscription(context)) throw new SessionRequiresHttpError(what, 'graphql subscription', SUBSCRIPTION);
  const state = findGraphQLRequestState(context);
  if (state) return state;
  const graphql = context.getArgByIndex<GraphQLContextLike | null | undefined>(2);
  if (asObject(graphql?.req) ?? asObject(graphql?.request) ?? asObject(graphql?.reply?.request))
    return undefined;
  throw new SessionRequiresHttpError(what, 'graphql', NO_REQUEST);
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
