import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Body,
  Controller,
  HttpCode,
  Module,
  Post,
  type DynamicModule,
  type INestApplication,
  type LoggerService,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { WsAdapter } from '@nestjs/platform-ws';
import {
  ConnectedSocket,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
} from '@nestjs/websockets';
import {
  GatewaySessions,
  Session,
  SessionModule,
  TempData,
  UserSessions,
  type SessionModuleOptions,
} from 'nest-session-state';
import { createPlatformApp } from '../../support/platform/test-platform.js';

/** The WebSocket adapters the gateway suites run on. */
export type GatewayAdapter = 'ws' | 'socket.io';

/** What a gateway reply carries: the snapshot's user and values, or the error a call threw. */
export interface SnapshotReply {
  user?: string | null;
  count?: number | null;
  available?: boolean;
  /** What `UserSessions.revoke()` answered (the `revoke-self` message). */
  revoked?: boolean;
  error?: string;
  message?: string;
}

const nameOf = (error: unknown) => (error instanceof Error ? error.name : String(error));

/** Closes a client of either adapter: a WebSocket close frame (`ws`), or socket.io's server-side disconnect. */
function closeClient(client: object, code: number, reason: string): void {
  const socket = client as { close?(code: number, reason: string): void; disconnect?(close: boolean): void };
  if (typeof socket.disconnect === 'function') socket.disconnect(true);
  else socket.close?.(code, reason);
}

/** HTTP routes that change the session the way apps do (sign in, change a value, sign out, revoke). */
@Controller()
class SessionChangesController {
  constructor(private readonly users: UserSessions) {}

  @Post('login')
  @HttpCode(200)
  async login(@Session() session: Session, @Body() body: { user: string }) {
    session.regenerate();
    session.setString('user', body.user);
    await this.users.bind(session, body.user);
    return { ok: true };
  }

  @Post('count')
  @HttpCode(200)
  count(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count };
  }

  @Post('logout')
  @HttpCode(200)
  logout(@Session() session: Session) {
    session.abandon();
    return { ok: true };
  }

  @Post('revoke-all')
  @HttpCode(200)
  async revokeAll(@Body() body: { user: string }) {
    return { revoked: await this.users.revokeAll(body.user) };
  }
}

function reply(session: Session): SnapshotReply {
  return {
    user: session.getString('user') ?? null,
    count: session.getInt32('count') ?? null,
    available: session.isAvailable,
  };
}

/**
 * One gateway for both adapters: `handleConnection(client, request)` records the handshake (the ws
 * adapter passes `request`; socket.io passes none, its client carries it), unless the connection asks
 * for `?lazy=1`, which leaves the snapshot to the first `of()`.
 */
@WebSocketGateway({ path: '/ws' })
class SessionGateway implements OnGatewayConnection {
  constructor(
    private readonly sessions: GatewaySessions,
    private readonly users: UserSessions,
  ) {}

  async handleConnection(client: object, request?: IncomingMessage): Promise<void> {
    const url = request?.url ?? (client as { handshake?: { url?: string } }).handshake?.url ?? '';
    if (url.includes('lazy=1')) return;
    try {
      await this.sessions.connect(client, request);
    } catch (error) {
      // As docs/websocket.md shows: Nest leaves a rejection of handleConnection unhandled, and Node exits.
      closeClient(client, 1011, nameOf(error));
    }
  }

  @SubscribeMessage('snapshot')
  async snapshot(@ConnectedSocket() client: object) {
    return { event: 'snapshot', data: await this.attempt(async () => reply(await this.sessions.of(client))) };
  }

  @SubscribeMessage('reload')
  async reload(@ConnectedSocket() client: object) {
    return {
      event: 'reload',
      data: await this.attempt(async () => reply(await this.sessions.reload(client))),
    };
  }

  @SubscribeMessage('param')
  param(@Session() session: Session) {
    return { event: 'param', data: reply(session) };
  }

  /** Tries each change a snapshot refuses; answers the error each threw (none may succeed). */
  @SubscribeMessage('write')
  async write(@ConnectedSocket() client: object) {
    const session = await this.sessions.of(client);
    const tries: Record<string, () => unknown> = {
      setString: () => session.setString('user', 'mallory'),
      set: () => session.set('cart', { items: [] }),
      setInt32: () => session.setInt32('count', 99),
      remove: () => session.remove('user'),
      clear: () => session.clear(),
      regenerate: () => session.regenerate(),
      abandon: () => session.abandon(),
      commit: () => session.commit(),
    };
    const errors: Record<string, string> = {};
    for (const [name, run] of Object.entries(tries)) {
      errors[name] = (await this.attempt(async () => void (await run()))).error ?? 'none';
    }
    return { event: 'write', data: { errors, after: reply(session) } };
  }

  /** "Sign out this device" from a socket: revokes the client's own session, the snapshot as `current`. */
  @SubscribeMessage('revoke-self')
  async revokeSelf(@ConnectedSocket() client: object) {
    return {
      event: 'revoke-self',
      data: await this.attempt(async () => {
        const session = await this.sessions.of(client);
        const revoked = await this.users.revoke(session.getString('user')!, session.id, session);
        return { ...reply(session), revoked };
      }),
    };
  }

  @SubscribeMessage('temp-data')
  tempData(@TempData() _tempData: TempData) {
    return { event: 'temp-data', data: {} };
  }

  private async attempt(run: () => Promise<SnapshotReply | void>): Promise<SnapshotReply> {
    try {
      return (await run()) ?? {};
    } catch (error) {
      return { error: nameOf(error), message: (error as Error).message };
    }
  }
}

@Module({})
class GatewayTestModule {
  static forRoot(options: SessionModuleOptions): DynamicModule {
    return {
      module: GatewayTestModule,
      imports: [SessionModule.forRoot(options)],
      controllers: [SessionChangesController],
      providers: [SessionGateway],
    };
  }
}

/** A test app with the session gateway on `adapter`, listening on a free port of 127.0.0.1. */
export async function startGatewayApp(
  adapter: GatewayAdapter,
  options: SessionModuleOptions,
  logger: LoggerService | false = false,
): Promise<{ app: INestApplication; url: string; port: number }> {
  const ref = await Test.createTestingModule({ imports: [GatewayTestModule.forRoot(options)] }).compile();
  const app = createPlatformApp(ref, { logger });
  app.useWebSocketAdapter(adapter === 'ws' ? new WsAdapter(app) : new IoAdapter(app));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, port };
}
