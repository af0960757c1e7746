import { Injectable } from '@nestjs/common';
import { loadedData } from '../session/stores/loaded-data.js';
import { GatewaySessionNotConnectedError } from '../errors/gateway.errors.js';
import { SessionUnavailableError } from '../errors/session.errors.js';
import { DistributedSession } from '../session/session.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { handshakeCookieOf, NO_HANDSHAKE, type GatewayHandshake } from './gateway-handshake.js';
import { ReadOnlySessionHost } from './gateway-session.host.js';
import { gatewayClients, type GatewayClientEntry } from './gateway-snapshots.js';
import { SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/**
 * The session of a WebSocket connection's handshake cookie, for gateways (`@nestjs/websockets` with the
 * `ws` or socket.io adapter, on Express or Fastify). The cookie is verified with the module's key ring
 * (a tampered, malformed or unknown cookie means no session) and the session is loaded from the module's
 * store. What a gateway gets is a **read-only snapshot**: it does not follow later HTTP requests until
 * {@link reload}, and changing it throws `SessionReadOnlyError` (change the session over HTTP instead).
 * Loading slides the session's idle timeout, as an HTTP request that reads it does.
 *
 * When the store is down the snapshot is empty with `isAvailable` false (logged), or, with the store's
 * `throwOnError`, the call throws `SessionUnavailableError`.
 *
 * @example
 * \@WebSocketGateway({ path: '/ws' })
 * export class ChatGateway implements OnGatewayConnection {
 *   constructor(private readonly sessions: GatewaySessions) {}
 *
 *   async handleConnection(client: WebSocket, request: IncomingMessage) {
 *     try {
 *       const session = await this.sessions.connect(client, request); // snapshot at connect
 *       if (!session.getString('user')) client.close(4401, 'sign in first');
 *     } catch {
 *       client.close(1011, 'session store unavailable'); // Nest leaves a rejection here unhandled: Node exits
 *     }
 *   }
 *
 *   \@SubscribeMessage('whoami')
 *   async whoami(\@ConnectedSocket() client: WebSocket) {
 *     const session = await this.sessions.reload(client); // sees a logout or revocation since connect
 *     return { event: 'whoami', data: { user: session.getString('user') ?? null } };
 *   }
 * }
 */
@Injectable()
@HiddenFromLogs()
export class GatewaySessions {
  private readonly host: ReadOnlySessionHost;

  constructor(private readonly runtime: SessionRuntime) {
    this.host = new ReadOnlySessionHost(runtime.options);
  }

  /**
   * Records the client's handshake and loads its session snapshot. Call it in `handleConnection`: with
   * the `ws` adapter pass the `request` Nest gives there; socket.io clients carry their handshake
   * (`client.request`), so `request` is optional for them. Catch what it rejects with: Nest does not handle
   * the promise `handleConnection` returns, so a rejection there stops the process.
   * @throws GatewaySessionNotConnectedError when neither `request` nor the client holds a handshake.
   * @throws SessionUnavailableError when the store is down and has `throwOnError`.
   */
  connect(client: object, request?: GatewayHandshake): Promise<DistributedSession> {
    const cookie = handshakeCookieOf(client, request);
    if (cookie === NO_HANDSHAKE) return Promise.reject(new GatewaySessionNotConnectedError());
    const entry: GatewayClientEntry = {
      sessionKey: this.runtime.sessionKeyOf(cookie)?.value,
      current: undefined as unknown as Promise<DistributedSession>,
    };
    entry.current = this.load(entry.sessionKey);
    gatewayClients.set(client, entry);
    return entry.current;
  }

  /**
   * The client's snapshot: the one loaded at connect (or by the last {@link reload}); for a socket.io
   * client never connected, loaded now from its handshake.
   * @throws GatewaySessionNotConnectedError for a `ws` client that {@link connect} was not called for.
   */
  of(client: object): Promise<DistributedSession> {
    return gatewayClients.get(client)?.current ?? this.connect(client);
  }

  /**
   * Loads the session again from the store, with the handshake's cookie: a new snapshot, seen by later
   * `of()` and `@Session()` (snapshots already handed out do not change). A session abandoned, revoked
   * or expired since is an empty snapshot; one changed by HTTP requests shows their changes.
   * @throws GatewaySessionNotConnectedError for a `ws` client that {@link connect} was not called for.
   */
  reload(client: object): Promise<DistributedSession> {
    const entry = gatewayClients.get(client);
    if (!entry) return this.connect(client);
    entry.current = this.load(entry.sessionKey);
    return entry.current;
  }

  private async load(sessionKey: string | undefined): Promise<DistributedSession> {
    const session = new DistributedSession(this.host);
    if (sessionKey === undefined) {
      session.attach(undefined, true);
      return session;
    }
    const { store, options } = this.runtime;
    try {
      const data = loadedData(await this.runtime.withIoTimeout(store.load(sessionKey, options.idleTimeout)));
      this.runtime.metrics?.loaded(data !== undefined);
      if (!store.loadMaySkipSlide) this.runtime.markSlid(sessionKey);
      session.attach(data, true);
    } catch (error) {
      session.attach(undefined, false);
      // Counted as an HTTP request's failed load is: an outage only sockets meet still shows in the metrics.
      this.runtime.metrics?.failed('load', error);
      this.runtime.storeFailureLog.write(
        SessionLogEvents.SessionLoadFailed,
        `Session of a WebSocket client could not be loaded: ${(error as Error).message}`,
      );
      if (store.throwOnError) throw new SessionUnavailableError('load', error);
    }
    return session;
  }
}
