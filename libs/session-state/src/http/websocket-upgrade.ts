/** A request's headers, as Express's, Fastify's and Node's request objects carry them. */
interface WithHeaders {
  readonly headers?: { readonly upgrade?: unknown } | null;
}

/**
 * Whether `request` asks to become a WebSocket (`Upgrade: websocket`). Fastify routes such a request (for
 * @fastify/websocket, Mercurius's subscriptions) like any other, with a response that is never written: it carries
 * no session, and the connection's messages must not run in its request context.
 */
export function isWebSocketUpgrade(request: object | null | undefined): boolean {
  const upgrade = (request as WithHeaders | null | undefined)?.headers?.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}
