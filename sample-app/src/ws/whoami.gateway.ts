import type { IncomingMessage } from 'node:http';
import {
  ConnectedSocket,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
} from '@nestjs/websockets';
import { GatewaySessions } from 'nest-session-state';
import type { WebSocket } from 'ws';
import { USER_KEY } from '../account/account.controller.js';

/**
 * A plain WebSocket on `/ws` (the `ws` adapter, on Express and Fastify): `{"event":"whoami"}` answers
 * `{"event":"whoami","data":{"user":<the signed-in user or null>}}` for the session of the handshake's
 * cookie. Each question reloads the session, so a sign-out since the connection opened shows as `null`;
 * a sign-in moves the session to a new cookie, which a new connection presents.
 */
@WebSocketGateway({ path: '/ws' })
export class WhoAmIGateway implements OnGatewayConnection {
  constructor(private readonly sessions: GatewaySessions) {}

  async handleConnection(client: WebSocket, request: IncomingMessage): Promise<void> {
    try {
      await this.sessions.connect(client, request);
    } catch {
      // Nest ignores what handleConnection returns: a rejection here would be unhandled, and Node exits.
      client.close(1011, 'session store unavailable');
    }
  }

  @SubscribeMessage('whoami')
  async whoami(@ConnectedSocket() client: WebSocket) {
    const session = await this.sessions.reload(client);
    return { event: 'whoami', data: { user: session.getString(USER_KEY) ?? null } };
  }
}
