import { createServer, connect, type Server, type Socket } from 'node:net';

/** What {@link HandshakeFaultProxy.failNextHandshake} did to the connection it caught. */
export interface HandshakeFault {
  /** The backend's process id, from its BackendKeyData message. */
  pid: number;
  /** The bytes the client got in its last read: the held ReadyForQuery, then what the dying backend sent. */
  delivered: Buffer;
}

/** One connection through the proxy. */
interface Link {
  client: Socket;
  server: Socket;
  /** Server bytes of the handshake not yet parsed into whole messages (only while `handshaking`). */
  pending: Buffer;
  handshaking: boolean;
  /** Set on the connection a fault was armed for. */
  fault?: {
    resolve: (fault: HandshakeFault) => void;
    reject: (error: Error) => void;
    pid?: number;
    /** The held ReadyForQuery and every server byte after it. */
    held?: Buffer[];
  };
}

/**
 * A TCP proxy in front of PostgreSQL (no TLS) that can kill a new connection at the last moment of its
 * handshake: the server's ReadyForQuery is held, the backend is terminated (`terminate(pid)`, e.g.
 * `pg_terminate_backend`), and the client gets the ReadyForQuery and the backend's FATAL in one write, so
 * one read (as when a backend is terminated right as it finishes the handshake, before the client read it).
 * node-postgres then completes the connect and emits the connection's 'error' in the same turn, while
 * pg-pool hands the new connection over.
 *
 * @example
 * const proxy = await HandshakeFaultProxy.start(db, (pid) => db.query('SELECT pg_terminate_backend($1)', [pid]));
 * await proxy.endAll();                       // the pool's idle connections go: the next operation opens one
 * const fault = proxy.failNextHandshake();
 * await request(url).get('/counter');         // its new connection dies as the pool hands it out
 * const { pid, delivered } = await fault;
 */
export class HandshakeFaultProxy {
  private readonly links = new Set<Link>();
  private armed: Link['fault'];

  private constructor(
    private readonly listener: Server,
    readonly host: string,
    readonly port: number,
    private readonly target: { host: string; port: number },
    private readonly terminate: (pid: number) => Promise<unknown>,
  ) {}

  /** Listens on 127.0.0.1 and a free port, forwarding each connection to `target`. */
  static async start(
    target: { host: string; port: number },
    terminate: (pid: number) => Promise<unknown>,
  ): Promise<HandshakeFaultProxy> {
    const holder: { proxy?: HandshakeFaultProxy } = {};
    const listener = createServer((client) => holder.proxy!.accept(client));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const address = listener.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
    holder.proxy = new HandshakeFaultProxy(listener, '127.0.0.1', address.port, target, terminate);
    return holder.proxy;
  }

  /**
   * Arms the fault for the next connection opened through the proxy. Resolves once the client got the
   * ReadyForQuery and the backend's last bytes; rejects if the connection ended before its ReadyForQuery.
   */
  failNextHandshake(): Promise<HandshakeFault> {
    if (this.armed) throw new Error('a fault is already armed');
    return new Promise<HandshakeFault>((resolve, reject) => (this.armed = { resolve, reject }));
  }

  /** Connections currently open through the proxy. */
  get connections(): number {
    return this.links.size;
  }

  /**
   * Ends every connection open through the proxy (server side first) and resolves once each client closed
   * its side: node-postgres has seen the end by then, so a pool has dropped those connections.
   */
  async endAll(): Promise<void> {
    await Promise.all(
      [...this.links].map(
        (link) =>
          new Promise<void>((resolve) => {
            link.client.once('close', () => resolve());
            link.server.destroy();
            link.client.end();
          }),
      ),
    );
  }

  private accept(client: Socket): void {
    const server = connect(this.target.port, this.target.host);
    const link: Link = { client, server, pending: Buffer.alloc(0), handshaking: true, fault: this.armed };
    this.armed = undefined;
    this.links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      if (server.writable) server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => this.fromServer(link, chunk));
    server.on('end', () => {
      const fault = link.fault;
      if (fault?.held) {
        // The backend sent its last bytes and closed: the client reads them with the ReadyForQuery.
        const delivered = Buffer.concat(fault.held);
        link.client.end(delivered);
        fault.resolve({ pid: fault.pid!, delivered });
      } else {
        fault?.reject(new Error('the connection ended before its ReadyForQuery'));
        link.client.end();
      }
      link.fault = undefined;
    });
    const close = () => {
      link.fault?.reject(new Error('the connection closed before the fault was delivered'));
      link.fault = undefined;
      this.links.delete(link);
      client.destroy();
      server.destroy();
    };
    client.on('close', close);
    client.on('error', close);
    server.on('error', close);
  }

  private fromServer(link: Link, chunk: Buffer): void {
    const fault = link.fault;
    if (fault?.held) {
      fault.held.push(chunk);
      return;
    }
    if (!link.handshaking || !fault) {
      // Only a faulted connection's handshake is parsed; every other byte goes straight on.
      link.client.write(chunk);
      return;
    }
    link.pending = Buffer.concat([link.pending, chunk]);
    let forward = 0;
    // Whole messages: a type byte, then an int32 length that counts itself but not the type byte.
    while (link.pending.length - forward >= 5) {
      const type = String.fromCharCode(link.pending[forward]);
      const end = forward + 1 + link.pending.readInt32BE(forward + 1);
      if (link.pending.length < end) break;
      if (type === 'K') fault.pid = link.pending.readInt32BE(forward + 5);
      if (type === 'Z') {
        link.handshaking = false;
        if (forward > 0) link.client.write(link.pending.subarray(0, forward));
        fault.held = [link.pending.subarray(forward)];
        link.pending = Buffer.alloc(0);
        if (fault.pid === undefined) {
          fault.reject(new Error('no BackendKeyData before ReadyForQuery'));
          link.fault = undefined;
          link.client.write(Buffer.concat(fault.held));
          return;
        }
        this.terminate(fault.pid).catch((error: Error) => {
          link.fault = undefined;
          fault.reject(error);
          link.client.destroy();
        });
        return;
      }
      forward = end;
    }
    if (forward > 0) {
      link.client.write(link.pending.subarray(0, forward));
      link.pending = link.pending.subarray(forward);
    }
  }

  /** Closes the listener and every connection through it. */
  async stop(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.server.destroy();
    }
    this.links.clear();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }
}
