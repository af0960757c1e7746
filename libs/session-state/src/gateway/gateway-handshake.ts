/**
 * The handshake of a WebSocket connection as Nest's adapters hand it over, typed structurally so the
 * library never imports `ws` or `socket.io`: Node's `IncomingMessage` (what the `ws` adapter passes to
 * `handleConnection(client, request)`, and socket.io's `client.request`), or socket.io's
 * `client.handshake`.
 *
 * @example
 * handleConnection(client: WebSocket, request: IncomingMessage) {
 *   return this.sessions.connect(client, request); // IncomingMessage is a GatewayHandshake
 * }
 */
export interface GatewayHandshake {
  readonly headers: { readonly cookie?: string | readonly string[] | undefined };
}

/** What a socket.io client carries of its handshake (a `ws` client carries nothing). */
interface ClientWithHandshake {
  readonly request?: unknown;
  readonly handshake?: unknown;
}

function isHandshake(value: unknown): value is GatewayHandshake {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { headers?: unknown }).headers === 'object' &&
    (value as { headers?: unknown }).headers !== null
  );
}

/** No handshake was found (as opposed to a handshake without a Cookie header). */
export const NO_HANDSHAKE = Symbol('no handshake');

/**
 * The `Cookie` header of the connection's handshake: from `request` when given, else from the client
 * (socket.io's `client.request`, then `client.handshake`); {@link NO_HANDSHAKE} when there is none.
 */
export function handshakeCookieOf(
  client: object,
  request?: GatewayHandshake,
): string | undefined | typeof NO_HANDSHAKE {
  const { request: clientRequest, handshake } = client as ClientWithHandshake;
  const found = isHandshake(request)
    ? request
    : isHandshake(clientRequest)
      ? clientRequest
      : isHandshake(handshake)
        ? handshake
        : undefined;
  if (!found) return NO_HANDSHAKE;
  const cookie = found.headers.cookie;
  return typeof cookie === 'string' ? cookie : Array.isArray(cookie) ? cookie.join('; ') : undefined;
}
