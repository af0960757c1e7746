import { SessionStateError } from './session-state.error.js';

/**
 * A change (`set`, `remove`, `clear`, `regenerate`, `abandon`, `commit`, or reading `id` before any HTTP
 * request created one) to the session a WebSocket gateway reads through {@link GatewaySessions}: that
 * session is a read-only snapshot of the handshake cookie's session. A WebSocket has no response to carry
 * a `Set-Cookie`, so a session it started, regenerated or abandoned could never reach the browser, and a
 * long-lived connection writing an old snapshot back would undo what HTTP requests changed since.
 *
 * @example
 * \@SubscribeMessage('theme')
 * async theme(\@ConnectedSocket() client: WebSocket) {
 *   (await this.sessions.of(client)).setString('theme', 'dark'); // SessionReadOnlyError
 *   // fix: change the session in an HTTP request (the page calls fetch('/prefs/theme', { method: 'POST' })),
 *   // or keep per-connection state on the socket
 * }
 */
export class SessionReadOnlyError extends SessionStateError {
  readonly code = 'SESSION_READ_ONLY';

  constructor() {
    super(
      "The session in a WebSocket gateway is a read-only snapshot of the handshake cookie's session: it cannot be " +
        'changed, committed, regenerated or abandoned there (a WebSocket has no response to carry a Set-Cookie, ' +
        'and writing a snapshot back would undo changes HTTP requests made since). Potential solutions: change the ' +
        'session in an HTTP request (the client calls a controller, e.g. with fetch) and call ' +
        '`gatewaySessions.reload(client)` afterwards; keep per-connection state on the socket (client.data); a ' +
        'session id is created by the first HTTP request that reads `session.id`.',
    );
  }
}

/**
 * A gateway asked for a client's session without a handshake to read it from: a `ws` client (the `ws`
 * adapter hands the handshake request to `handleConnection` only) that {@link GatewaySessions.connect}
 * was not called for, or `@Session()` in a gateway before the client's snapshot was loaded.
 *
 * @example
 * handleConnection(client: WebSocket, request: IncomingMessage) {
 *   return this.sessions.connect(client, request); // fix: record the handshake at connect
 * }
 */
export class GatewaySessionNotConnectedError extends SessionStateError {
  readonly code = 'GATEWAY_NOT_CONNECTED';

  constructor(usedBy = 'GatewaySessions') {
    super(
      `${usedBy} found no handshake for this WebSocket client, so it cannot tell which session is connected. ` +
        'Potential solutions: in the gateway, implement OnGatewayConnection and call ' +
        '`await gatewaySessions.connect(client, request)` in `handleConnection(client, request)` (the ws adapter ' +
        'passes the handshake request only there; socket.io clients carry it as client.request, so ' +
        '`gatewaySessions.of(client)` finds it anywhere); `@Session()` in a gateway returns the snapshot that ' +
        'connect() (or of()/reload()) loaded.',
    );
  }
}
