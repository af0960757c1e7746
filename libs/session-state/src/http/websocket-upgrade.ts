/** What is read of a request: Node's `upgrade` flag and `Upgrade` header, or those of Fastify's `raw` request. */
interface UpgradeLike {
  readonly raw?: UpgradeLike | null;
  readonly upgrade?: unknown;
  readonly headers?: { readonly upgrade?: unknown } | null;
}

/**
 * Whether `request` (Node's, Express's or Fastify's request object) is a WebSocket's upgrade: Node delivered it as
 * an upgrade (`upgrade` true: the server listens for upgrades, and the request asked for one) to `websocket`. Fastify
 * routes such a request (for @fastify/websocket, Mercurius's subscriptions) like any other, with a response that is
 * never written: it carries no session, and the connection's messages must not run in its request context. A plain
 * request that merely carries an `Upgrade: websocket` header is not one: Node hands it to the app as a request.
 */
export function isWebSocketUpgrade(request: object | null | undefined): boolean {
  const like = request as UpgradeLike | null | undefined;
  const raw = like?.raw ?? like;
  const upgrade = raw?.headers?.upgrade;
  return raw?.upgrade === true && typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}
