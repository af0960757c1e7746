import { createServer, connect, type Server, type Socket } from 'node:net';

/** One connection through the proxy: what the client sent while held waits in `queue`. */
interface Link {
  client: Socket;
  server: Socket;
  held: boolean;
  queue: Buffer[];
  /** The client went away while held: the held bytes still go on, then the server side ends. */
  clientGone?: boolean;
  /** Cut off ({@link StallProxy.cutOff}): nothing goes through any more, in either direction, and nothing closes. */
  cut?: boolean;
  /** The server's bytes held by {@link StallProxy.holdRepliesWhen}, to be sent on in order. */
  replies?: Buffer[];
}

/** A hold armed by {@link StallProxy.holdWhen}: resolved once the held bytes were answered. */
interface Hold {
  marker: Buffer;
  ms: number;
  released: () => void;
  answered: () => void;
  link?: Link;
}

/**
 * A TCP proxy in front of one Redis (or any TCP server) that can stall one connection on demand:
 * the client's bytes from a chosen command on are held for a while, then sent in order. The client
 * sees what a slow network or a stalled socket gives it: no reply, then (after it may have given
 * up waiting) the command runs anyway. Replies are never held.
 *
 * @example
 * const proxy = await StallProxy.start(server);          // connect the app to proxy.port
 * const hold = proxy.holdWhen('marker-value', 800);      // the chunk carrying 'marker-value' and all after it
 * await request(url).post('/set/x').send({ value: 'marker-value' }).expect(503);
 * await hold.answered;                                   // the held commit reached Redis and was answered
 */
export class StallProxy {
  private readonly links = new Set<Link>();
  private armed: Hold | undefined;
  private armedReplies: { marker: Buffer; ms: number; released: () => void; link?: Link } | undefined;

  private constructor(
    private readonly listener: Server,
    readonly host: string,
    readonly port: number,
    private target: { host: string; port: number },
  ) {}

  /** Listens on 127.0.0.1 and a free port, forwarding each connection to `target`. */
  static async start(target: { host: string; port: number }): Promise<StallProxy> {
    const accepted: Socket[] = [];
    const holder: { proxy?: StallProxy } = {};
    // Half-open allowed: a cut-off connection must not answer the client's FIN either (see cutOff).
    const listener = createServer({ allowHalfOpen: true }, (client) =>
      holder.proxy ? holder.proxy.accept(client) : accepted.push(client),
    );
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const address = listener.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
    const proxy = new StallProxy(listener, '127.0.0.1', address.port, target);
    holder.proxy = proxy;
    for (const client of accepted) proxy.accept(client);
    return proxy;
  }

  /**
   * Arms a hold: the first client chunk (on any connection) containing `marker` and everything
   * that connection sends after it are held for `ms`, then forwarded in order. `released` resolves
   * when they were sent on, `answered` when the server's next bytes on that connection came back.
   */
  holdWhen(
    marker: string,
    ms: number,
  ): { released: Promise<void>; answered: Promise<void>; readonly engaged: boolean } {
    if (this.armed) throw new Error('a hold is already armed');
    let released!: () => void;
    let answered!: () => void;
    const hold: Hold = {
      marker: Buffer.from(marker),
      ms,
      released: () => released(),
      answered: () => answered(),
    };
    this.armed = hold;
    return {
      released: new Promise<void>((resolve) => (released = resolve)),
      answered: new Promise<void>((resolve) => (answered = resolve)),
      /** True once the marker passed: the hold is holding (or held) that connection. */
      get engaged() {
        return hold.link !== undefined;
      },
    };
  }

  /**
   * Arms a hold of replies: the first client chunk containing `marker` goes through at once, and the server's bytes
   * on that connection from then on are held for `ms`, then sent on in order. The client sees a command that ran but
   * whose reply came late (after it may have given up waiting and sent it again). `released` resolves when they went.
   */
  holdRepliesWhen(marker: string, ms: number): { released: Promise<void>; readonly engaged: boolean } {
    if (this.armedReplies) throw new Error('a hold of replies is already armed');
    let released!: () => void;
    const hold = {
      marker: Buffer.from(marker),
      ms,
      released: () => released(),
      link: undefined as Link | undefined,
    };
    this.armedReplies = hold;
    return {
      released: new Promise<void>((resolve) => (released = resolve)),
      get engaged() {
        return hold.link !== undefined;
      },
    };
  }

  /** Drops an armed hold (of requests or of replies) that never engaged (the marked bytes were never sent). */
  disarm(): void {
    if (this.armed?.link === undefined) this.armed = undefined;
    if (this.armedReplies?.link === undefined) this.armedReplies = undefined;
  }

  /**
   * What a silently dropped network path (a NAT or load balancer that forgot the connection) gives a client: every
   * connection open now stays open but carries nothing more, either way, not even the client's FIN (a client that
   * closes such a socket politely waits for an answer that never comes). Connections made later go through as usual
   * (to {@link retarget}'s server, if it was called).
   */
  cutOff(): void {
    for (const link of this.links) {
      link.cut = true;
      link.queue.length = 0;
    }
  }

  /** Connections made from now on go to `target` (a failover that moved the server's address); open ones stay. */
  retarget(target: { host: string; port: number }): void {
    this.target = target;
  }

  /** Connections currently open through the proxy. */
  get connections(): number {
    return this.links.size;
  }

  private accept(client: Socket): void {
    const server = connect(this.target.port, this.target.host);
    const link: Link = { client, server, held: false, queue: [] };
    this.links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.fromClient(link, chunk));
    client.on('end', () => {
      if (!link.cut) client.end(); // as without allowHalfOpen
    });
    server.on('data', (chunk: Buffer) => {
      if (link.cut) return;
      if (link.replies) {
        link.replies.push(chunk);
        return;
      }
      const hold = this.armed;
      if (hold?.link === link && !link.held) {
        this.armed = undefined;
        hold.answered();
      }
      client.write(chunk);
    });
    const close = () => {
      if (link.held) {
        // Like bytes already on the wire: they reach the server after the client gave up.
        link.clientGone = true;
        client.destroy();
        return;
      }
      if (this.armed?.link === link) this.armed = undefined; // nothing can answer it now
      this.links.delete(link);
      client.destroy();
      server.destroy();
    };
    client.on('close', close);
    server.on('close', close);
    client.on('error', close);
    server.on('error', close);
  }

  private fromClient(link: Link, chunk: Buffer): void {
    if (link.cut) return;
    const replyHold = this.armedReplies;
    if (replyHold && replyHold.link === undefined && chunk.includes(replyHold.marker)) {
      replyHold.link = link;
      link.replies = [];
      setTimeout(() => {
        const replies = link.replies ?? [];
        link.replies = undefined;
        this.armedReplies = undefined;
        for (const reply of replies) if (!link.client.destroyed) link.client.write(reply);
        replyHold.released();
      }, replyHold.ms);
    }
    const hold = this.armed;
    if (hold && hold.link === undefined && chunk.includes(hold.marker)) {
      hold.link = link;
      link.held = true;
      setTimeout(() => {
        link.held = false;
        for (const queued of link.queue.splice(0)) link.server.write(queued);
        if (link.clientGone) link.server.end();
        hold.released();
      }, hold.ms);
    }
    if (link.held) link.queue.push(chunk);
    else link.server.write(chunk);
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
