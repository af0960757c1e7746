import { Logger } from '@nestjs/common';
import type { Socket } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ResolvedRedisCacheOptions } from './redis-cache.options.js';
import {
  RedisConfigurationError,
  RedisOperationError,
  SENTINEL_CLIENT_ADVICE,
} from './redis-cache.errors.js';
import { Deadlines } from '../deadlines.js';
import { DISCONNECT_TIMEOUT, quitWithin, settleWithin } from './redis-close.js';
import { RedisClock, redisTimeMs } from './redis-clock.js';
import { describeClientAddress, describeStartupFailure } from './redis-startup-failure.js';
import { tlsHandshakeFailure } from './tls-handshake-probe.js';
import { tlsFailureOf } from '../tls-failure.js';
import { pingRedis } from './redis-ping.js';
import { REDIS_SCRIPTS, type RedisScriptName } from './redis.scripts.js';
import { redisKeys } from './redis-keys.js';
import { isNoScriptError, ScriptEncoder, type ScriptArgument } from './encoded-script.command.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { RateLimitedLog } from '../../http/rate-limited-log.js';
import { listenShared } from './client-listeners.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';
import { withoutCommand } from './without-command.js';

type ScriptCall = (...args: ScriptArgument[]) => Promise<unknown>;

const SCRIPT_ENCODERS = Object.fromEntries(
  Object.entries(REDIS_SCRIPTS).map(([name, s]) => [name, new ScriptEncoder(s.lua, s.numberOfKeys)]),
) as Record<RedisScriptName, ScriptEncoder>;

const FIRST_RETRY_DELAY = 20;
const RETRY_INTERVAL = 1000;
/** More than the operation deadlines' check interval (at most 50 ms). */
const DEADLINE_SLACK = 100;
/** Redirections {@link RedisConnection.scriptThenWait} follows (ioredis' maxRedirections default). */
const MAX_REDIRECTIONS = 16;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether commands sent on `connection` still wait for their replies (ioredis' queue of commands in flight). */
function owesReplies(connection: Redis): boolean {
  return ((connection as unknown as { commandQueue?: { length: number } }).commandQueue?.length ?? 0) > 0;
}

/**
 * How long a silent socket's check waits, after the second connection answered, for replies on the old socket (at
 * most the operation timeout): those of a server that was stalled and woke while the check ran.
 */
const WOKE_GRACE_MS = 250;
/** After a server's refusals (OOM, READONLY), how long without one before any success ends the outage's log. */
const REFUSALS_QUIET_MS = 10_000;

/** The session keys an ACL user must reach, checked at startup (see {@link RedisConnection.connect}). */
export interface SessionKeyAccess {
  /** `session.lock` is on: the `_Lock` keys too. */
  readonly lock?: boolean;
  /** A user index's keys (one slot), when the app configured `users`. */
  readonly userIndex?: readonly string[];
}

/**
 * One ioredis connection (standalone or cluster) with the seed's failure semantics: every operation
 * is bounded by `operationTimeoutInMilliseconds` and retried per `retryTimeoutInMilliseconds`;
 * outages are logged once, not once per request. Shared by the cache and the session store.
 *
 * @example
 * const connection = new RedisConnection(resolveRedisCacheOptions({ clusterNodes: ['10.0.0.1:7000'] }));
 * await connection.connect(); // rejects within connectionTimeoutInMilliseconds, naming the option to fix
 * const store = new RedisSessionStore(connection);
 * // ... on shutdown
 * await connection.close();
 */
@HiddenFromLogs()
export class RedisConnection {
  private readonly logger = new Logger('RedisConnection');
  private readonly permissionLog = new RateLimitedLog(this.logger);
  private readonly ownsClient: boolean;
  private started = false;
  private failing = false;
  /** The operation a working server refused, beginning the outage being logged (see reportRecovery). */
  private failedWhat: string | undefined;
  /** When a working server last refused an operation (see reportRecovery). */
  private lastRefusalAt = 0;
  private closed = false;
  private corked = false;
  /**
   * The last connection error the client reported (health reports name it while disconnected), not an
   * operation's: "Stream isn't writeable" says nothing of why the connection is down.
   */
  private lastError: Error | undefined;
  /**
   * Per connection (the client, or each Cluster master's), the socket and what it had received at the first
   * timed-out operation of a silence (see {@link noteTimeout}).
   */
  private readonly silences = new WeakMap<Redis, { stream: Socket; bytesRead: number; since: number }>();
  /** When a timed-out operation last had the Cluster's slot map read again (see {@link readSlotMapAgain}). */
  private slotMapReadAt = 0;
  /** A fresh connection is checking whether a silent socket's path is dead (see {@link dropIfPathIsDead}). */
  private probingPath = false;
  /** That fresh connection, closed with this one. */
  private pathProbe: Redis | undefined;
  /** The ioredis client; usable once {@link connect} resolved. */
  readonly client: Redis | Cluster;
  private readonly deadlines: Deadlines;
  /** Redis's clock as seen from here: commit deadlines are in it (see {@link commitDeadline}). */
  private readonly redisClock = new RedisClock();
  /**
   * Scripts go out encoded by {@link ScriptEncoder}: a standalone client without `keyPrefix` and
   * without auto-pipelining (its other commands wait for the next tick; an encoded script would
   * overtake them).
   */
  private readonly encodesScripts: boolean;

  constructor(readonly options: ResolvedRedisCacheOptions) {
    this.deadlines = new Deadlines(options.operationTimeout);
    this.ownsClient = options.mode !== 'client';
    this.client = (options.client as Redis | Cluster | undefined) ?? this.createClient();
    this.encodesScripts =
      this.client instanceof Redis &&
      !this.client.options.keyPrefix &&
      !this.client.options.enableAutoPipelining;
    for (const [name, script] of Object.entries(REDIS_SCRIPTS)) {
      this.client.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    }
  }

  /**
   * Connects at startup; rejects within the connection timeout with an error naming the option to fix.
   * `sessionKeys`: sessions will be stored here, so an ACL user must reach their keys (checked once): the data
   * and ended marks, the lock with `lock`, a user index's keys (`userIndex`, one slot) with `users`.
   */
  async connect({ sessionKeys = false }: { sessionKeys?: boolean | SessionKeyAccess } = {}): Promise<void> {
    const startedAt = Date.now();
    const events: unknown[] = [];
    const stopListening = listenShared(this.client, 'error', (error: unknown) => events.push(error));
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error('connection timeout'));
      }, this.options.connectionTimeout);
    });
    try {
      await Promise.race([this.establish(sessionKeys), deadline]);
      if (events.length > 0) throw events[0];
    } catch (error) {
      stopListening();
      if (this.ownsClient) this.client.disconnect();
      if (error instanceof RedisConfigurationError) throw error;
      const timedOutNow = timedOut; // the deadline's timer may fire during the probe below
      const certificate = await this.clusterCertificateFailure(startedAt);
      throw describeStartupFailure(
        error,
        certificate ? [...events, certificate] : events,
        this.options,
        timedOutNow,
      );
    } finally {
      clearTimeout(timer);
    }
    stopListening();
    this.adviseOnSentinels();
    this.started = true;
    this.listeners = [
      listenShared(this.client, 'error', this.onError),
      // A cluster reports its nodes' connection errors apart from its own.
      ...(this.client instanceof Cluster ? [listenShared(this.client, 'node error', this.onNodeError)] : []),
      listenShared(this.client, 'ready', this.onReady),
    ];
  }

  /**
   * For a cluster with `ssl` whose start (begun at `startedAt`) failed: the certificate failure of its first startup
   * node, if that is why (ioredis's Cluster drops its nodes' TLS errors while it reads the slots). One handshake,
   * within what is left of the connection timeout (the start still fails within it) and a second at most.
   */
  private async clusterCertificateFailure(startedAt: number): Promise<Error | undefined> {
    const { mode, tls, clusterNodes, connectionTimeout } = this.options;
    if (mode !== 'cluster' || !tls || clusterNodes.length === 0) return undefined;
    const left = Math.min(1_000, startedAt + connectionTimeout - Date.now());
    if (left < 50) return undefined;
    const failure = await tlsHandshakeFailure(clusterNodes[0], tls, left);
    return failure !== undefined && tlsFailureOf(failure) ? new Error(failure) : undefined;
  }

  /**
   * A Sentinel client without `failoverDetector` stays on a master that hung (rather than failed) after the Sentinels
   * promoted its replica, until its socket is dropped; and the old master, back, takes writes until it is turned
   * into a replica, which then discards them (a probe: hundreds of acknowledged writes per session).
   */
  private adviseOnSentinels(): void {
    if (this.client instanceof Cluster) return;
    const { sentinels, failoverDetector } = this.client.options;
    if (!sentinels?.length || failoverDetector) return;
    logEvent(
      this.logger,
      SessionLogEvents.RedisSentinelWithoutFailoverDetector,
      'The Redis client finds its master through Sentinels without failoverDetector: true. A master that hangs ' +
        'instead of failing keeps the client after the Sentinels promoted a replica, and writes it takes once back ' +
        'are lost when it becomes a replica. Build the client with failoverDetector: true ' +
        '(docs/redis.md, "Redis Sentinel").',
    );
  }

  /** Removes this connection's listeners from the client (see listenShared). */
  private listeners: (() => void)[] = [];
  private readonly onError = (error: Error): void => this.reportFailure('connection', error);
  /** The refusal of the credentials was logged in this outage (see reportCredentials). */
  private credentialsReported = false;
  private readonly onNodeError = (error: Error): void => {
    this.lastError = error;
    if (isAuthenticationRefusal(error)) this.reportCredentials(error);
  };
  private readonly onReady = (): void => {
    this.lastError = undefined; // a later outage names its own reason
    this.credentialsReported = false; // a Cluster node's refusal may have come without an outage of the client
    this.reportRecovery();
  };

  private async establish(sessionKeys: boolean | SessionKeyAccess): Promise<void> {
    if (this.client.status === 'wait') await this.client.connect();
    await this.client.ping();
    if (!(this.client instanceof Cluster)) await this.refuseUnfitServer();
    if (sessionKeys) await this.checkKeyAccess(sessionKeys === true ? {} : sessionKeys);
    // Load the scripts now so the first request pays no EVAL fallback.
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    if (sessionKeys) await this.warnOfTooFewReplicas(nodes);
    await Promise.all([
      ...nodes.flatMap((node) => Object.values(REDIS_SCRIPTS).map((s) => node.script('LOAD', s.lua))),
      // A first reading of Redis's clock, before the first commit needs a deadline in it.
      ...nodes.map(async (node) => this.redisClock.observe(redisTimeMs(await node.time()))),
    ]);
  }

  /**
   * What a standalone connection reached, by its `INFO` (skipped for an ACL user that may not run it), refused when
   * sessions could not work there:
   * - a node of a Redis Cluster of several shards (`url`, `host`): it reaches only that node's slots, and most sessions
   *   would answer 503 (MOVED), logged as an outage. A single-shard cluster (its node serves every slot) works so;
   * - a Sentinel (its port given as the server's): it runs none of the commands sessions need;
   * - a replica: it refuses every write (READONLY), so every commit would answer 503.
   */
  private async refuseUnfitServer(): Promise<void> {
    const info = await this.client.info().catch(() => '');
    const where = `Redis at ${describeClientAddress(this.client as Redis)}`;
    if (/^redis_mode:sentinel\s*$/m.test(info)) {
      throw new RedisConfigurationError(
        `${where} is a Redis Sentinel, not a server that can hold sessions. Point host and port (or url) at the ` +
          `master. ${SENTINEL_CLIENT_ADVICE}`,
      );
    }
    if (/^role:slave\s*$/m.test(info)) {
      const fix =
        (this.client as Redis).options.role === 'slave'
          ? "The client was built with role: 'slave': build it with role 'master' (the default)."
          : `Point host and port (or url) at the master. ${SENTINEL_CLIENT_ADVICE}`;
      throw new RedisConfigurationError(
        `${where} is a replica: it refuses writes (READONLY), so every session commit would fail. ${fix}`,
      );
    }
    if (!/^cluster_enabled:1\s*$/m.test(info)) return;
    const cluster = String(await this.client.call('CLUSTER', 'INFO').catch(() => ''));
    const shards = /^cluster_size:(\d+)\s*$/m.exec(cluster);
    if (!shards || Number(shards[1]) <= 1) return;
    throw new RedisConfigurationError(
      `${where} is a node of a Redis Cluster: a connection to one node (the url or host option, or ` +
        'an ioredis Redis client) reaches only its slots, and the sessions kept on the others would fail (MOVED). ' +
        "Use the clusterNodes option (['host:port', ...], one node or more) or pass an ioredis Cluster as client.",
    );
  }

  /**
   * `waitForReplicas` over the replicas a master has online (by its `INFO replication`, skipped for an ACL user that may
   * not run it): until more connect, every commit waits `waitForReplicasTimeoutInMilliseconds` and answers 503 though
   * the master applied it (a client that sends it again applies it twice). Warned, not refused: a replica that starts
   * after the app (a container start order, a failover's new master) is a state that passes.
   */
  private async warnOfTooFewReplicas(masters: Redis[]): Promise<void> {
    const wanted = this.options.waitForReplicas;
    if (wanted === 0) return;
    for (const master of masters) {
      const info = await master.info('replication').catch(() => '');
      if (!/^connected_slaves:/m.test(info)) continue;
      const online = info.match(/^slave\d+:.*\bstate=online\b/gm)?.length ?? 0;
      if (online >= wanted) continue;
      logEvent(
        this.logger,
        SessionLogEvents.RedisTooFewReplicas,
        `waitForReplicas is ${wanted}, but the Redis master at ${describeClientAddress(master)} has ${online} ` +
          `replica${online === 1 ? '' : 's'} online: until more connect, every session commit waits ` +
          'waitForReplicasTimeoutInMilliseconds and answers 503 although the master applied it. Start the replicas, ' +
          'or lower waitForReplicas (0, the default, turns it off).',
      );
    }
  }

  /**
   * An ACL user whose key patterns cover `_Data` but not `_Ended` (enough for 0.1.0) would see every
   * `regenerate()` and `abandon()` fail as an outage, one without a user index's keys every sign-in: an EXISTS
   * per slot (the session's keys, the user index's) says so at startup instead (at connect, or later for what only
   * the app's injections decide). Rejects with a {@link RedisConfigurationError} naming the keys.
   */
  async checkKeyAccess({ lock = false, userIndex }: SessionKeyAccess): Promise<void> {
    const probe = 'startup-check';
    const { applicationName, username } = this.options;
    const sessionKeys = [
      redisKeys.sessionData(applicationName, probe),
      redisKeys.sessionEnded(applicationName, probe),
      ...(lock ? [redisKeys.sessionLock(applicationName, probe)] : []),
    ];
    try {
      await Promise.all([
        this.client.exists(...sessionKeys),
        ...(userIndex ? [this.client.exists(...userIndex)] : []),
      ]);
    } catch (error) {
      const message = (error as Error).message;
      // A key the user may not touch (not a command it may not run: the generic NOPERM message says which).
      if (!/NOPERM/.test(message) || !/\bkeys?\b/i.test(message) || /command/i.test(message)) throw error;
      // ioredis puts a client's keyPrefix in front of every key: the ACL sees it too.
      const prefix = this.client.options.keyPrefix ?? '';
      throw new RedisConfigurationError(
        `Redis refused the ACL user${username ? ` ${username}` : ''} the session keys (NOPERM): the library reads ` +
          `and writes ${prefix}{${applicationName}_*}_Data and ${prefix}{${applicationName}_*}_Ended (the marks ` +
          `regenerate() and abandon() leave; 0.1.0 wrote none), ${prefix}{${applicationName}_*}_Lock with ` +
          `session.lock, and ${prefix}{${applicationName}_user_*}_Sessions and _SessionInfo with users. Grant the ` +
          `key pattern ~${prefix}{${applicationName}_*}_*, or check the applicationName option. [${message}]`,
        { cause: withoutCommand(error) },
      );
    }
  }

  private createClient(): Redis | Cluster {
    const o = this.options;
    const common: RedisOptions = {
      username: o.username,
      password: o.accessKey,
      tls: o.tls,
      connectTimeout: o.connectionTimeout,
      lazyConnect: true,
      // Fail fast while disconnected instead of queueing requests behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => this.reconnectDelay(times),
      // ioredis destroys a socket it closes after this, by a timer it never clears when the socket is gone already
      // (a failed or timed-out start, a close while reconnecting): 2 s by default, which held the process that long.
      disconnectTimeout: DISCONNECT_TIMEOUT,
    };
    if (o.mode === 'cluster') {
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        // Not in a cluster: ioredis' auto-pipelines group commands per node and follow a MOVED/ASK
        // redirection only when every command of the batch got the same one (redis/ioredis#2075), so
        // while slots move (resharding) session reads and writes would fail with MOVED. Sent one by
        // one, each command follows its redirections (MOVED: refresh the slot map; ASK: ASKING).
        enableAutoPipelining: false,
        redisOptions: {
          username: o.username,
          password: o.accessKey,
          tls: o.tls,
          connectTimeout: o.connectionTimeout,
          maxRetriesPerRequest: 0,
          disconnectTimeout: DISCONNECT_TIMEOUT,
        },
        clusterRetryStrategy: (times) => this.reconnectDelay(times),
        // A slot-map read asks one node at a time (shuffled) and waits this long for each: after a master hung, a
        // read that asks it first would wait the whole connection timeout before asking the next (and, in flight at
        // close(), keep the process that long); a second, or the operation timeout when longer, is plenty for one
        // CLUSTER SLOTS on a new connection.
        slotsRefreshTimeout: Math.min(o.connectionTimeout, Math.max(o.operationTimeout, 1000)),
        dnsLookup: (address, callback) => callback(null, address),
      };
      return new Cluster([...o.clusterNodes], clusterOptions);
    }
    // No auto-pipelining here either: measured with 16 concurrent requests (bench/README.md, profiles),
    // ioredis' per-tick Pipeline cost more CPU per command (and GC) than the socket writes it saved.
    return new Redis({
      ...common,
      host: o.host,
      port: o.port,
      db: o.databaseId,
      enableAutoPipelining: false,
    });
  }

  /** Reconnect backoff; none while starting (startup fails fast instead) or after close. */
  private reconnectDelay(times: number): number | null {
    return this.started && !this.closed ? Math.min(times * 100, RETRY_INTERVAL) : null;
  }

  /**
   * The deadline for a commit sent now, in Redis's clock (epoch ms): the commit script applies
   * nothing when it runs later. It is the moment this process stops waiting for the reply
   * (`operationTimeoutInMilliseconds` after sending) or earlier, so a commit reported as failed
   * cannot land afterwards. Derived from Redis's own TIME (see {@link RedisClock}), so clock skew
   * between the app and Redis does not move it. No earlier than that: under load the app's own timer
   * fires late, and a reply that beats it is still a success, as before deadlines existed.
   */
  commitDeadline(): number {
    return this.redisClock.now() + this.options.operationTimeout;
  }

  /**
   * Redis's time now, as estimated here (epoch ms; see {@link RedisClock}): one clock for every instance,
   * whatever their own clocks say, for times that instances compare (a sign-in's binding time).
   */
  redisNow(): number {
    return this.redisClock.now();
  }

  /** A commit's reply carried Redis's time (epoch ms): keeps {@link commitDeadline} exact. */
  observeRedisTime(redisMs: number): void {
    this.redisClock.observe(redisMs);
  }

  /** Runs a defined script in its Buffer-returning form. */
  script(name: RedisScriptName, ...args: ScriptArgument[]): Promise<unknown> {
    return this.scriptWith(name, args);
  }

  /** {@link script} with its arguments in an array the caller built (not copied). */
  scriptWith(name: RedisScriptName, args: ScriptArgument[]): Promise<unknown> {
    const command = this.encodesScripts ? SCRIPT_ENCODERS[name].command(args) : undefined;
    if (command === undefined) return this.defined(name, args);
    (this.client as Redis).sendCommand(command);
    // After a SCRIPT FLUSH or a failover to a node that never loaded it: the defined command ends in
    // EVAL, which loads the script again for the next EVALSHA. A NOSCRIPT script did not run.
    return command.promise.then(undefined, (error: unknown) => {
      if (isNoScriptError(error)) return this.defined(name, args);
      throw error;
    });
  }

  private defined(name: RedisScriptName, args: ScriptArgument[]): Promise<unknown> {
    const call = (this.client as unknown as Record<string, ScriptCall>)[`${name}Buffer`];
    return call.apply(this.client, args);
  }

  /**
   * Holds this turn's commands in the socket and writes them together once the event loop has run
   * every callback ready now (`setImmediate`): the requests that arrived together share one write
   * syscall, and Redis answers them with one read. Standalone only (a cluster has one socket per node).
   */
  private coalesceWrites(): void {
    // Not on a client the app passed in: its own commands would wait for the turn to end too.
    if (this.corked || !this.ownsClient) return;
    const stream = (this.client as Redis).stream as
      (NodeJS.WritableStream & { cork?(): void; uncork?(): void }) | undefined;
    if (!stream?.cork || this.client instanceof Cluster) return;
    this.corked = true;
    stream.cork();
    setImmediate(() => {
      this.corked = false;
      stream.uncork!();
    });
  }

  /**
   * Runs a script and then `WAIT replicas timeout` in one pipeline (same node in a cluster: the
   * pipeline follows the script's key).
   *
   * While cluster slots move, the script can be redirected (MOVED, or ASK during its slot's migration):
   * Redis did not run it. ioredis re-sends a redirected pipeline only when its other commands are
   * read-only, and WAIT is not, so redirections are followed here, at most {@link MAX_REDIRECTIONS}:
   * MOVED refreshes the slot map and sends again; ASK sends ASKING, the script and WAIT to the node the
   * key migrates to (WAIT must follow the write on the connection that made it).
   * Resolves with the script's reply and the number of acknowledging replicas.
   */
  async scriptThenWait(
    name: RedisScriptName,
    args: (string | Buffer | number)[],
    replicas: number,
    timeoutMs: number,
  ): Promise<[reply: unknown, acknowledged: number]> {
    const script = REDIS_SCRIPTS[name];
    let askTarget: Redis | undefined;
    for (let redirections = 0; ; redirections++) {
      const pipeline = askTarget ? askTarget.pipeline().asking() : this.client.pipeline();
      if (askTarget) pipeline.eval(script.lua, script.numberOfKeys, ...args);
      else (pipeline as unknown as Record<string, (...a: unknown[]) => unknown>)[`${name}Buffer`](...args);
      pipeline.wait(replicas, timeoutMs);
      const results = ((await pipeline.exec()) ?? []).slice(askTarget ? 1 : 0); // without ASKING's OK
      const redirection = /^(MOVED|ASK) \d+ (\S+)/.exec(results[0]?.[0]?.message ?? '');
      const cluster = this.client;
      if (!redirection || !(cluster instanceof Cluster) || redirections >= MAX_REDIRECTIONS || this.closed) {
        for (const [error] of results) if (error) throw error;
        return [results[0]?.[1], Number(results[1]?.[1] ?? 0)];
      }
      askTarget =
        redirection[1] === 'ASK'
          ? cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === redirection[2])
          : undefined;
      if (!askTarget) await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
    }
  }

  /**
   * Runs `operation` bounded by the operation timeout, retried per the seed: first after 20 ms,
   * then every second until `retryTimeoutInMilliseconds`, then one final try.
   * Rejects with {@link RedisOperationError}.
   */
  execute<T>(name: string, operation: () => Promise<T>, extraTimeMs = 0): Promise<T> {
    this.coalesceWrites();
    const started = Date.now();
    let first: Promise<T>;
    try {
      first = this.withTimeout(name, operation, extraTimeMs);
    } catch (error) {
      return this.retry(name, operation, extraTimeMs, started, error);
    }
    // The first try is a plain promise chain: it runs on every request, the retries almost never.
    return first.then(
      (result) => {
        if (this.failing) this.reportRecovery(name);
        return result;
      },
      (error: unknown) => this.retry(name, operation, extraTimeMs, started, error),
    );
  }

  private async retry<T>(
    name: string,
    operation: () => Promise<T>,
    extraTimeMs: number,
    started: number,
    firstError: unknown,
  ): Promise<T> {
    if (isPermissionRefusal(firstError)) throw this.permissionRefused(name, firstError);
    if (isClientTimeout(firstError)) this.noteTimeout();
    const retryTimeout = this.options.retryTimeout;
    let error = firstError;
    let attempts = 1;
    let finalTry = false;
    for (;;) {
      const elapsed = Date.now() - started;
      if (retryTimeout === 0 || finalTry || this.closed) {
        const failure =
          error instanceof RedisOperationError
            ? error
            : new RedisOperationError(
                `Redis operation ${name} failed${attempts > 1 ? ` after ${attempts} attempts` : ''}: ${(error as Error).message}`,
                name,
                { cause: withoutCommand(error) },
              );
        this.reportFailure(name, failure);
        throw failure;
      }
      const delay = attempts === 1 ? FIRST_RETRY_DELAY : RETRY_INTERVAL;
      if (elapsed + delay >= retryTimeout) {
        finalTry = true;
        await sleep(Math.max(0, retryTimeout - elapsed));
      } else {
        await sleep(delay);
      }
      attempts++;
      try {
        const result = await this.withTimeout(name, operation, extraTimeMs);
        if (this.failing) this.reportRecovery(name);
        return result;
      } catch (next) {
        if (isPermissionRefusal(next)) throw this.permissionRefused(name, next);
        if (isClientTimeout(next)) this.noteTimeout();
        error = next;
      }
    }
  }

  /**
   * An ACL refusal (NOPERM) is the configuration's, not an outage: retrying cannot help, and logging it as "Redis is
   * failing" (then "answers again" at the next command) would send the operator after the network. It gets its own
   * line, at most once per interval, naming the grant to add.
   */
  private permissionRefused(name: string, error: Error): RedisOperationError {
    const { username } = this.options;
    this.permissionLog.write(
      SessionLogEvents.RedisPermissionDenied,
      `Redis refused ${name} to the ACL user${username ? ` ${username}` : ''} (${error.message}): a permission, not ` +
        'an outage. Grant the commands and key patterns docs/redis.md lists for the options in use.',
    );
    return new RedisOperationError(`Redis operation ${name} was refused: ${error.message}`, name, {
      cause: withoutCommand(error),
    });
  }

  /** The time a write's `WAIT` may add to it: none unless `waitForReplicas` is set. */
  get replicaWaitTime(): number {
    return this.options.waitForReplicas === 0 ? 0 : this.options.waitForReplicasTimeout;
  }

  /**
   * The longest an {@link execute} call with `extraTimeMs` can take before it settles: every try is
   * bounded (plus the deadline check's resolution), and a try that starts before
   * `retryTimeoutInMilliseconds` runs out may be followed by one final try.
   */
  longestExecution(extraTimeMs = 0): number {
    const attempt = this.options.operationTimeout + extraTimeMs + DEADLINE_SLACK;
    return this.options.retryTimeout === 0 ? attempt : this.options.retryTimeout + 2 * attempt;
  }

  private withTimeout<T>(name: string, operation: () => Promise<T>, extraTimeMs: number): Promise<T> {
    const timeout = this.options.operationTimeout + extraTimeMs;
    return this.deadlines.bound(operation(), timeout, () => {
      this.noteTimeout();
      return new RedisOperationError(
        `Redis operation ${name} timed out after operationTimeoutInMilliseconds=${timeout}`,
        name,
      );
    });
  }

  /**
   * An operation timed out. A connection whose socket received nothing since an earlier timeout at least twice the
   * operation timeout before (plus a `WAIT`'s timeout with `waitForReplicas`) may have lost its network path (a NAT or
   * load balancer that forgot it) or its server (replaced under the same address while the old one hung: a DNS name,
   * a Sentinel client); it would keep the socket until the kernel gives up, minutes later, every request waiting out
   * its timeout until then. A fresh connection decides (see {@link dropIfPathIsDead}). In a Cluster the node of the
   * operation is not known: each master's connection that owes replies is watched (an idle node is silent because
   * nothing was asked of it), and a dropped one is made again from the slot map (read again after this timeout, see
   * {@link readSlotMapAgain}, or on the next MOVED).
   */
  private noteTimeout(): void {
    if (this.closed) return;
    const client = this.client;
    if (!(client instanceof Cluster)) {
      this.noteSilence(client);
      return;
    }
    this.readSlotMapAgain(client);
    for (const node of client.nodes('master')) {
      if (owesReplies(node)) this.noteSilence(node);
      else this.silences.delete(node);
    }
  }

  /**
   * ioredis reads the slot map again only on a MOVED, a CLUSTERDOWN or a closed connection (its documented 5 s
   * `slotsRefreshInterval` default is not applied). A master that hangs with its connections open (stopped, frozen,
   * partitioned) gives none of those: once its replica was promoted, every request for its slots would still go to
   * it and time out, until it woke. So a timed-out operation has the map read again (at most once per operation
   * timeout; ioredis runs one read at a time), which moves the slots to the promoted replica. An interval would cost a
   * new connection per read (ioredis opens one for each) on healthy clusters too, and its timer could outlive close().
   */
  private readSlotMapAgain(cluster: Cluster): void {
    const now = Date.now();
    if (now - this.slotMapReadAt < this.options.operationTimeout) return;
    this.slotMapReadAt = now;
    cluster.refreshSlotsCache(); // a node that fails to answer is ioredis' 'node error' event (onNodeError)
  }

  private noteSilence(connection: Redis): void {
    if (connection.status !== 'ready' || this.probingPath) return;
    const stream = connection.stream as Socket | undefined;
    if (!stream) return;
    const now = Date.now();
    const seen = this.silences.get(connection);
    if (seen === undefined || seen.stream !== stream || seen.bytesRead !== stream.bytesRead) {
      this.silences.set(connection, { stream, bytesRead: stream.bytesRead, since: now });
      return;
    }
    // A commit's WAIT (waitForReplicas) holds the connection's replies for up to its own timeout: not a silence.
    if (now - seen.since < 2 * this.options.operationTimeout + this.replicaWaitTime) return;
    this.probingPath = true;
    this.dropIfPathIsDead(connection, stream, seen.bytesRead, now - seen.since)
      .catch(() => undefined) // a probe that could not even be made decides nothing
      .finally(() => {
        this.probingPath = false;
        this.silences.delete(connection);
      });
  }

  /**
   * Opens a second connection the way the client would (the same address, Sentinels, TLS and credentials) and runs
   * a trivial script. If it answers and the old socket is still silent a moment later, the old socket's path is dead:
   * it is destroyed, and the client reconnects by itself. (The moment: a server that was stalled and woke as the
   * probe ran answers both connections at once, and the old socket's replies, to the commands that timed out, arrive
   * with the probe's.) If the probe gets no answer, or the old socket speaks meanwhile, the server itself was stalled
   * (a long script, a fork, a pause), and dropping the socket would only lose the replies on their way (an app's own
   * client would send its commands again after the reconnect): it is kept. A commit still on a dropped socket applies nothing when it runs late (its
   * deadline).
   */
  private async dropIfPathIsDead(
    client: Redis,
    stream: Socket,
    bytesRead: number,
    silentMs: number,
  ): Promise<void> {
    const within = this.options.operationTimeout;
    const probe = client.duplicate({
      lazyConnect: true,
      failoverDetector: false,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      sentinelRetryStrategy: () => null,
      connectTimeout: within,
      disconnectTimeout: 0,
    });
    probe.on('error', () => undefined); // the answer is whether the script came back
    this.pathProbe = probe;
    let answered: boolean | undefined;
    try {
      // A script, as sessions run: a PING is answered under CLIENT PAUSE WRITE (a FAILOVER, a migration) while
      // scripts wait, and BUSY (a long script) is an answer of a server that is busy, not of a dead path.
      answered = await settleWithin(
        probe
          .connect()
          .then(() => probe.eval('return 1', 0))
          .then(
            () => true,
            () => false,
          ),
        within,
      );
    } finally {
      this.pathProbe = undefined;
      probe.disconnect();
    }
    if (answered !== true) return;
    await sleep(Math.min(within, WOKE_GRACE_MS));
    if (
      this.closed ||
      client.stream !== stream ||
      client.status !== 'ready' ||
      stream.bytesRead !== bytesRead
    )
      return;
    logEvent(
      this.logger,
      SessionLogEvents.RedisConnectionSilent,
      `Redis sent nothing on the connection for ${silentMs} ms while operations waited, and a new connection ` +
        'answers: connecting again (a network path that dropped the connection, or a server replaced under the ' +
        'same address).',
    );
    stream.destroy();
  }

  private reportFailure(what: string, error: Error): void {
    if (what === 'connection') {
      this.lastError = error;
      if (isAuthenticationRefusal(error)) this.reportCredentials(error);
    }
    const refusal = isServerRefusal(error);
    if (refusal) this.lastRefusalAt = Date.now();
    if (this.failing || this.closed) return;
    this.failing = true;
    // Refused by a server that works (full, read-only): only that kind of operation succeeding ends it.
    this.failedWhat = refusal ? what : undefined;
    logEvent(
      this.logger,
      SessionLogEvents.SessionStoreUnavailable,
      `Redis is failing (${what}: ${error.message}); requests that need it fail or run without it ` +
        'until it answers again. Further failures are not logged until then.',
    );
  }

  /**
   * Redis refuses the credentials a reconnect sent (a rotated password, an ACL user removed or changed): logged once
   * until Redis answers again, whatever was logged first. The outage's first line names the symptom on the request's
   * command ("Stream isn't writeable"), the refusal only comes with the connection's error event (a probe: nothing
   * named the password, however long it lasted).
   */
  private reportCredentials(error: Error): void {
    if (this.credentialsReported || this.closed) return;
    this.credentialsReported = true;
    logEvent(
      this.logger,
      SessionLogEvents.RedisAuthenticationFailed,
      `Redis refuses this app's credentials (${error.message}): check redis.accessKey and redis.username (or the ` +
        "url's), against the server's requirepass or ACL user, which may have changed since the app connected.",
    );
  }

  /**
   * Logs the end of the outage: on a connection made again, or when an operation succeeds; after a refusal by a
   * server that works (see isServerRefusal), only an operation of the refused kind, or any once no refusal came for
   * {@link REFUSALS_QUIET_MS} (a rare kind refused: its success may be long in coming). A full Redis (maxmemory,
   * noeviction) answers loads while it refuses every commit: each load would report a recovery between two
   * failures, two lines per request.
   */
  private reportRecovery(what?: string): void {
    if (!this.failing) return;
    if (
      what !== undefined &&
      this.failedWhat !== undefined &&
      what !== this.failedWhat &&
      Date.now() - this.lastRefusalAt < REFUSALS_QUIET_MS
    ) {
      return;
    }
    this.failing = false;
    this.credentialsReported = false;
    logEvent(this.logger, SessionLogEvents.SessionStoreRecovered, 'Redis answers again.');
  }

  /**
   * PINGs Redis (every master of a cluster) once, bounded by `operationTimeoutInMilliseconds`, without
   * retries: the health probe. Rejects with a {@link RedisOperationError} that says which node failed and why.
   */
  ping(): Promise<void> {
    return pingRedis(this.client, this.options.operationTimeout, this.deadlines, () => this.lastError).catch(
      (error: unknown) => {
        // As a timed-out operation: an instance that only gets health probes (taken out of rotation by them) must
        // also read a Cluster's slot map again and drop a silent socket, or it would report down until the old
        // master woke.
        this.noteTimeout();
        throw error;
      },
    );
  }

  /** True for a Redis Cluster connection. */
  get isCluster(): boolean {
    return this.client instanceof Cluster;
  }

  /**
   * Closes the connection if this module created it. An app's own client is left open, without this
   * connection's listeners: an app created and closed many times on one client (tests) leaves none behind.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.pathProbe?.disconnect();
    if (!this.ownsClient) {
      for (const stop of this.listeners) stop();
      this.listeners = [];
      return;
    }
    // QUIT is answered after the commands sent before it: waiting as long as one of them may take (a commit
    // with WAIT included) lets their replies arrive; only a Redis that stopped answering is cut off.
    await quitWithin(this.client, this.options.operationTimeout + this.replicaWaitTime);
  }
}

/** Redis refused the credentials a connection sent: `WRONGPASS`, `NOAUTH`, or older servers' `invalid password`. */
function isAuthenticationRefusal(error: Error): boolean {
  return /^(WRONGPASS|NOAUTH)\b|invalid (username-)?password/i.test(error.message);
}

/**
 * An error reply of a server that works but refuses what was sent: out of memory under `noeviction`, a replica
 * (READONLY), persistence failing (MISCONF), too few replicas (NOREPLICAS). Not a timeout or a lost connection.
 */
function isServerRefusal(error: Error): boolean {
  const cause = (error as { cause?: unknown }).cause;
  const message = cause instanceof Error ? cause.message : error.message;
  return /^(OOM|READONLY|MISCONF|NOREPLICAS) /.test(message);
}

/** ioredis's own `commandTimeout` ran out (an app's client may set one shorter than the operation timeout). */
function isClientTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

function isPermissionRefusal(error: unknown): error is Error {
  return error instanceof Error && /(?:^|\s)NOPERM\b/.test(error.message);
}
