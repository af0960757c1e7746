import { WebSocket } from 'ws';
import { io, type Socket } from 'socket.io-client';
import type { GatewayAdapter } from './gateway-test.app.js';

/** A connected client of either adapter that sends an event and awaits the gateway's reply event. */
export interface GatewayClient {
  request<T = unknown>(event: string): Promise<T>;
  /** The next `exception` event (Nest's gateway error reply). */
  nextException(): Promise<unknown>;
  /** How the server closed the connection: the WebSocket close code and reason (`ws`), or socket.io's reason. */
  closedByServer(): Promise<{ code?: number; reason: string }>;
  close(): Promise<void>;
}

const REPLY_TIMEOUT_MS = 5_000;

function timeout(event: string): Promise<never> {
  return new Promise((_, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "${event}" reply within ${REPLY_TIMEOUT_MS} ms`)),
      REPLY_TIMEOUT_MS,
    );
    timer.unref();
  });
}

/** `ws` client with a Cookie header on the handshake (what a browser sends for its cookies). */
async function wsClient(port: number, cookie: string | undefined, query: string): Promise<GatewayClient> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, {
    headers: cookie ? { cookie } : {},
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const next = (event: string) =>
    Promise.race([
      new Promise<unknown>((resolve) => {
        const onMessage = (raw: Buffer) => {
          const message = JSON.parse(raw.toString()) as { event: string; data: unknown };
          if (message.event !== event) return;
          socket.off('message', onMessage);
          resolve(message.data);
        };
        socket.on('message', onMessage);
      }),
      timeout(event),
    ]);
  return {
    async request<T>(event: string) {
      const reply = next(event);
      socket.send(JSON.stringify({ event, data: {} }));
      return (await reply) as T;
    },
    nextException: () => next('exception'),
    closedByServer: () =>
      Promise.race([
        new Promise<{ code: number; reason: string }>((resolve) =>
          socket.once('close', (code: number, reason: Buffer) =>
            resolve({ code, reason: reason.toString() }),
          ),
        ),
        timeout('close'),
      ]),
    close: () =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', () => resolve());
        socket.close();
      }),
  };
}

/** socket.io client with the Cookie header as `extraHeaders` (Node's client sends it on the handshake). */
async function ioClient(port: number, cookie: string | undefined, query: string): Promise<GatewayClient> {
  const socket: Socket = io(`http://127.0.0.1:${port}`, {
    path: '/ws',
    transports: ['websocket'],
    extraHeaders: cookie ? { cookie } : {},
    query: Object.fromEntries(new URLSearchParams(query)),
    reconnection: false,
    forceNew: true,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const next = (event: string) =>
    Promise.race([new Promise<unknown>((resolve) => socket.once(event, resolve)), timeout(event)]);
  return {
    async request<T>(event: string) {
      const reply = next(event);
      socket.emit(event, {});
      return (await reply) as T;
    },
    nextException: () => next('exception'),
    closedByServer: () =>
      Promise.race([
        new Promise<{ reason: string }>((resolve) =>
          socket.once('disconnect', (reason: string) => resolve({ reason })),
        ),
        timeout('disconnect'),
      ]),
    close: () => {
      socket.disconnect();
      return Promise.resolve();
    },
  };
}

/** Connects to the gateway at `/ws` with `cookie` on the handshake; `lazy` asks it not to connect() the session. */
export function connectClient(
  adapter: GatewayAdapter,
  port: number,
  cookie: string | undefined,
  { lazy = false }: { lazy?: boolean } = {},
): Promise<GatewayClient> {
  const query = lazy ? '?lazy=1' : '';
  return adapter === 'ws' ? wsClient(port, cookie, query) : ioClient(port, cookie, query);
}
