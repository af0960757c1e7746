import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RedisConfigurationError } from './redis-cache.errors.js';
import { DISCONNECT_TIMEOUT, quitWithin, settleWithin } from './redis-close.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { withoutCommand } from './without-command.js';

/** The channel Redis publishes invalidations on for clients that redirect tracking (RESP2). */
const INVALIDATION_CHANNEL = '__redis__:invalidate';

/** Clients whose tracking redirects to a near cache's subscriber: one near cache per client. */
const TRACKED_CLIENTS = new WeakSet<Redis>();

/**
 * The `run_id` of the Redis server `connection` reaches (new with each server process); undefined when the user may
 * not read it (an ACL user without INFO, a renamed INFO): the check it serves is then skipped, as before it existed.
 * Any other failure (a timeout, a connection closing) leaves the server unconfirmed: the setup is tried again.
 */
async function serverRunId(connection: Redis): Promise<string | undefined> {
  let info: string;
  try {
    info = await connection.info('server');
  } catch (error) {
    if (/^(NOPERM|ERR unknown command)/.test((error as Error).message ?? '')) return undefined;
    throw new ServersApartError(`could not be compared: INFO failed (${(error as Error).message})`);
  }
  return /^run_id:(\w+)\s*$/m.exec(info)?.[1];
}

/**
 * The two connections reached different servers (see {@link RedisInvalidations.enable}), or which ones could not
 * be read: the subscriber is made again in a while.
 */
class ServersApartError extends Error {
  constructor(reason = 'are different Redis servers (a failover under way?)') {
    super(`the servers the data connection and the invalidation connection reach ${reason}`);
  }
}

/** How long after finding the two connections apart the subscriber is made again (it finds its server anew). */
const APART_RETRY_MS = 1_000;

/** What receives the invalidations (the session near cache). */
export interface InvalidationSink {
  /** True while copies are served. */
  readonly isActive: boolean;
  /** A client (this instance included) changed `key`, or Redis dropped it. */
  invalidate(key: string): void;
  /** Everything may have changed (FLUSHALL/FLUSHDB). */
  flush(): void;
  /** Invalidations reach this instance from now on. */
  activate(): void;
  /** Invalidations may be missed from now on. */
  deactivate(): void;
  /** Receives the barrier that confirms copies (see {@link RedisInvalidations.barrier}). */
  useBarrier(barrier: () => Promise<boolean>): void;
}

/**
 * Redis client-side caching: the data connection runs `CLIENT TRACKING ON REDIRECT <id>`, and a second
 * connection subscribed to `__redis__:invalidate` receives the names of keys this connection read that any
 * client changed or Redis dropped since, or `null` when the database was flushed.
 *
 * Without NOLOOP: this instance hears of its own writes too, so a commit or slide ends its own copy. NOLOOP would
 * keep that copy, but Redis then also withholds what it does to other keys while running this connection's command
 * (an eviction under maxmemory, a key dropped from a full tracking table, a key expiring as the command touches
 * it): those copies would stay stale until `maxAgeInMilliseconds`. Default mode, not broadcast: each instance
 * hears only about sessions it read. The sink is active only while both connections are up and tracking is on;
 * any close deactivates it, and the next `ready` of either connection sets tracking up again (the
 * subscriber's client id changes on reconnect).
 *
 * The subscriber speaks RESP2: under RESP3 Redis sends invalidations as push frames, which ioredis
 * does not pass to listeners.
 */
export class RedisInvalidations {
  private readonly logger = new Logger('RedisNearCache');
  private readonly subscriber: Redis;
  private subscriberId: string | undefined;
  /** The Redis server the subscriber reached (`run_id`), when the user may run INFO. */
  private subscriberServer: string | undefined;
  /** Bumped by each close of the subscriber's connection (see enable). */
  private subscriberConnections = 0;
  /** Bumped by every close, so a setup that raced with one does not activate the sink. */
  private generation = 0;
  private enabling: Promise<void> | undefined;
  /** Pending retry after the connections were found on different servers (see retryApart). */
  private apartTimer: NodeJS.Timeout | undefined;
  private enableAgain = false;
  private closed = false;
  private warned = false;
  private readonly onClientClose = () => this.lost();
  private readonly onClientReady = () => this.refresh();
  /** The barrier callers of this turn of the event loop share (one PING). */
  private nextBarrier: Promise<boolean> | undefined;
  /** The app client's `keyPrefix` (ioredis adds it to every key it sends; invalidations carry it). */
  private readonly keyPrefix: string;

  constructor(
    private readonly client: Redis,
    private readonly sink: InvalidationSink,
    private readonly startTimeout: number,
    /** The app passed the client in: tracking is turned off again on close. */
    private readonly isAppClient: boolean,
    /** Longest wait for a barrier's PING (the operation timeout); then copies are not trusted. */
    private readonly barrierTimeout = startTimeout,
  ) {
    this.keyPrefix = client.options.keyPrefix ?? '';
    sink.useBarrier(() => this.barrier());
    this.subscriber = client.duplicate({
      protocol: 2,
      autoResubscribe: false,
      lazyConnect: true,
      enableOfflineQueue: false,
      connectionName: 'nest-session-state:invalidations',
      disconnectTimeout: DISCONNECT_TIMEOUT,
    });
  }

  /** Connects the subscriber and turns tracking on; fails startup naming `nearCache` if Redis refuses. */
  async start(): Promise<void> {
    if (TRACKED_CLIENTS.has(this.client)) {
      throw new RedisConfigurationError(
        'Redis option nearCache: this client already serves another near cache, and a connection can redirect ' +
          'its invalidations to only one of them. Give each SessionModule its own client.',
      );
    }
    TRACKED_CLIENTS.add(this.client); // claimed now: modules start concurrently
    // Listening before the setup, so a connection lost during it is not missed.
    this.subscriber.on('error', () => undefined); // outages are reported by the data connection
    this.subscriber.on('messageBuffer', (_channel: Buffer, keys: unknown) => this.received(keys));
    this.subscriber.on('close', () => {
      this.subscriberId = undefined;
      this.subscriberConnections++;
      this.lost();
    });
    this.client.on('close', this.onClientClose);
    try {
      const setup = (async () => {
        await this.subscriber.connect();
        await this.enable(this.generation);
        if (!this.sink.isActive) throw new Error('a connection was lost during the setup');
        return true;
      })();
      if ((await settleWithin(setup, this.startTimeout)) === undefined) {
        throw new Error(`no answer within connectionTimeoutInMilliseconds=${this.startTimeout}`);
      }
    } catch (error) {
      this.closed = true;
      clearTimeout(this.apartTimer);
      this.client.off('close', this.onClientClose);
      this.subscriber.disconnect();
      await this.trackingOff(this.barrierTimeout);
      TRACKED_CLIENTS.delete(this.client);
      if (error instanceof ServersApartError) {
        throw new RedisConfigurationError(
          `Redis option nearCache could not be set up: ${error.message}. Start again once that is over (a ` +
            'failover, or a Redis too busy to answer INFO).',
          { cause: withoutCommand(error) },
        );
      }
      throw new RedisConfigurationError(
        `Redis option nearCache could not be set up: ${(error as Error).message}. It needs Redis 6 or later ` +
          'and, for the configured user, the commands CLIENT ID, CLIENT TRACKING, CLIENT SETNAME, SUBSCRIBE and PING ' +
          'and the channel __redis__:invalidate (ACL: +client|id +client|tracking +client|setname +subscribe ' +
          '&__redis__:invalidate +ping). ' +
          'Grant them, or remove nearCache.',
        { cause: withoutCommand(error) },
      );
    }
    this.subscriber.on('ready', () => this.refresh());
    this.client.on('ready', this.onClientReady);
  }

  /**
   * Stops listening and closes the subscriber. The data connection is closed by its owner; on a
   * client the app passed in, tracking is turned off again.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.apartTimer);
    this.lost();
    this.client.off('close', this.onClientClose);
    this.client.off('ready', this.onClientReady);
    // Each step bounded by the operation timeout: a Redis that stopped answering must not hold the shutdown.
    const within = this.barrierTimeout;
    const enabling = this.enabling;
    if (
      enabling &&
      (await settleWithin(
        enabling.then(() => true),
        within,
      )) !== true
    ) {
      // A setup still running (it stops before its TRACKING ON once it sees the close) keeps the client
      // claimed until it settles, so no new near cache on this client can be redirected by it.
      void enabling.finally(async () => {
        await this.trackingOff(within); // it may have turned tracking on before it saw the close
        TRACKED_CLIENTS.delete(this.client);
      });
    } else {
      await this.trackingOff(within);
      TRACKED_CLIENTS.delete(this.client);
    }
    await quitWithin(this.subscriber, within);
  }

  /** On a client the app passed in, tracking off again (bounded: a hung Redis must not hold a close). */
  private async trackingOff(within: number): Promise<void> {
    if (this.isAppClient && this.client.status === 'ready') {
      await settleWithin(
        this.client.call('CLIENT', 'TRACKING', 'OFF').catch(() => undefined),
        within,
      );
    }
  }

  /**
   * Resolves true once every invalidation Redis sent this instance before the call has reached the
   * sink: a PING on the subscriber connection, whose reply Redis queues behind the invalidations
   * already queued there (one connection's messages and replies keep their order, and ioredis emits
   * a message before it resolves a later reply). So a copy still held after the barrier includes every
   * commit that completed before the call, on any instance: a request that arrives after another
   * instance answered cannot read the value that instance replaced. Callers within one turn of the
   * event loop share one PING (sent after the turn, so after all of them arrived). False when the
   * subscriber does not answer within the operation timeout: the caller reads Redis instead.
   */
  barrier(): Promise<boolean> {
    this.nextBarrier ??= new Promise<boolean>((resolve) =>
      setImmediate(() => {
        this.nextBarrier = undefined;
        resolve(this.ping());
      }),
    );
    return this.nextBarrier;
  }

  private async ping(): Promise<boolean> {
    if (this.closed || this.subscriber.status !== 'ready' || !this.sink.isActive) return false;
    const generation = this.generation;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answered = await Promise.race([
        this.subscriber.ping().then(() => true),
        new Promise<boolean>((resolve) => {
          // Decided after the turn's I/O (as cache/deadlines.ts does): under a stalled event loop the timer runs
          // late, and a reply already waiting in the socket must answer first, not cost the connection.
          timer = setTimeout(() => setImmediate(resolve, false), this.barrierTimeout);
        }),
      ]);
      // A subscriber that does not answer a PING within the operation timeout (a half-open socket, a hung Redis)
      // is replaced: until it is set up again copies are not served, so requests read Redis directly instead of
      // each waiting out a barrier first.
      if (!answered && generation === this.generation && !this.closed) this.replaceSubscriber();
      // A connection lost meanwhile may have dropped invalidations: not confirmed.
      return answered && generation === this.generation;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Redis sends a list of key names, or null for a flush (FLUSHALL/FLUSHDB). Anything else was published on the
   * channel by a client (`PUBLISH __redis__:invalidate ...`), not sent by Redis: every copy is dropped (it may be
   * meant to name one), and nothing else is read from it (before, a published string ended the process).
   */
  private received(keys: unknown): void {
    if (!Array.isArray(keys) || !keys.every((key) => Buffer.isBuffer(key))) {
      this.sink.flush();
      return;
    }
    // Redis names keys as stored: with the client's keyPrefix, which the copies' keys are without.
    const prefix = this.keyPrefix;
    for (const key of keys) {
      const name = key.toString('utf8');
      this.sink.invalidate(prefix !== '' && name.startsWith(prefix) ? name.slice(prefix.length) : name);
    }
  }

  private lost(): void {
    this.generation++;
    this.sink.deactivate();
  }

  /** After {@link ServersApartError}: the subscriber made again in a while (one timer at a time, none after close). */
  private retryApart(): void {
    if (this.apartTimer !== undefined || this.closed) return;
    this.apartTimer = setTimeout(() => {
      this.apartTimer = undefined;
      if (!this.closed) this.replaceSubscriber();
    }, APART_RETRY_MS);
    this.apartTimer.unref();
  }

  /** Drops the subscriber's connection and reconnects it; its `ready` sets tracking up again. */
  private replaceSubscriber(): void {
    this.subscriberId = undefined;
    this.lost();
    this.subscriber.disconnect(true);
  }

  /** Sets tracking up again after a reconnect; one setup at a time. */
  private refresh(): void {
    if (this.closed) return;
    if (this.enabling) {
      this.enableAgain = true;
      return;
    }
    this.enabling = this.enable(this.generation)
      .catch((error: Error) => {
        // Tracking may be off or redirected to a closed subscriber: copies are no longer safe.
        this.lost();
        // Nothing else would set it up again while both connections stay up: the subscriber is made again later,
        // and finds its server anew (the data connection, if it is the one left behind, is made again by its owner).
        if (error instanceof ServersApartError) this.retryApart();
        if (this.warned || this.closed) return;
        this.warned = true;
        logEvent(
          this.logger,
          SessionLogEvents.NearCacheDisabled,
          `Near cache is off until Redis invalidations can be set up again (${error.message}); sessions are read from Redis.`,
        );
      })
      .finally(() => {
        this.enabling = undefined;
        if (this.enableAgain) {
          this.enableAgain = false;
          this.refresh();
        }
      });
  }

  private async enable(generation: number): Promise<void> {
    if (this.subscriber.status !== 'ready' || this.client.status !== 'ready') return;
    if (this.subscriberId === undefined) {
      const connection = this.subscriberConnections;
      const id = String(await this.subscriber.client('ID'));
      const server = await serverRunId(this.subscriber); // before SUBSCRIBE, which allows no INFO
      await this.subscriber.subscribe(INVALIDATION_CHANNEL);
      await this.subscriber.ping(); // the barrier's command: refused here, not on every read, if the ACL denies it
      // The subscriber reconnected meanwhile: the id and server were the old connection's, and its ready sets up
      // again. (Only its own closes count: after a data connection's, this subscriber is set up, and must be kept so.)
      if (connection !== this.subscriberConnections) return;
      this.subscriberServer = server;
      this.subscriberId = id;
    }
    // Each connection finds its server by itself (a Sentinel client asks the Sentinels, a DNS name may move in a
    // failover): a data connection left on the old master would redirect its tracking to whichever of that server's
    // clients has the subscriber's id, a stranger, and no invalidation would reach this instance.
    const server = await serverRunId(this.client);
    if (server !== undefined && this.subscriberServer !== undefined && server !== this.subscriberServer) {
      throw new ServersApartError();
    }
    // The redirection can only be changed from OFF.
    await this.client.call('CLIENT', 'TRACKING', 'OFF');
    // A close meanwhile turned tracking off (or gave up waiting for this setup): not on again.
    if (generation !== this.generation || this.closed) return;
    await this.client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', this.subscriberId);
    if (generation !== this.generation || this.closed) return;
    // A retry still pending from an earlier setup (the servers apart, or not compared) would drop this subscriber.
    clearTimeout(this.apartTimer);
    this.apartTimer = undefined;
    if (this.warned) logEvent(this.logger, SessionLogEvents.NearCacheEnabled, 'Near cache is on again.');
    this.warned = false;
    this.sink.activate();
  }
}
