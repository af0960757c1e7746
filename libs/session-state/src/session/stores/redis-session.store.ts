import { RedisOperationError } from '../../cache/redis/redis-cache.errors.js';
import { SessionLockLostError, SessionMovedError } from '../../errors/session.errors.js';
import { commitLimitExceeded } from './session-commit.limits.js';
import { commandBytes } from '../../cache/redis/redis-bytes.js';
import { redisKeys } from '../../cache/redis/redis-keys.js';
import {
  parseCommitReply,
  parseLoadReply,
  parseTrackedLoadReply,
} from '../../cache/redis/redis-session.replies.js';
import type { RedisConnection } from '../../cache/redis/redis.connection.js';
import type { SessionNearCache } from './session-near-cache.js';
import { guardedSessionId } from '../../users/user-session.fields.js';
import { RedisUserSessionIndex } from '../../users/redis/redis-user-session.index.js';
import type { UserSessionIndex, UserSessionIndexSource } from '../../users/user-session-index.interface.js';
import type {
  EndedSessionMark,
  SessionChanges,
  SessionCommitLimits,
  SessionEnding,
  SessionData,
  SessionStore,
} from './session-store.interface.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/** The invalidation barrier's turn of the event loop and timer resolution, on top of its timeout. */
const BARRIER_SLACK = 50;

/**
 * Sessions on Redis or Redis Cluster: one hash per session at `{<applicationName>_<key>}_Data`.
 * Load is HGETALL + PEXPIRE and commit is HDEL/HSET/PEXPIRE, each one EVALSHA: one round trip,
 * atomic, and writing only the keys this request changed. The commit script also refuses to apply
 * past its deadline (so a commit reported as failed never lands later) or over the session limits
 * (checked on what is stored), and deletes the session when it is empty after the delta.
 *
 * With a {@link SessionNearCache} (option `redis.nearCache`), loads are answered from this process
 * while its copy is coherent, confirmed by the invalidation barrier (a PING on the invalidation
 * connection, shared by the requests of one event-loop turn): a read-only request costs a PING instead of a
 * script, and no commit that completed before the request is missed. A commit or slide ends this instance's copy
 * too (Redis invalidates it, see RedisInvalidations): the next load reads Redis.
 *
 * @example
 * SessionModule.forRoot({ redis: { url: process.env.REDIS_URL } }); // uses a RedisSessionStore
 * // by hand, over a connection you manage:
 * const store = new RedisSessionStore(connection);
 */
@HiddenFromLogs()
export class RedisSessionStore implements SessionStore, UserSessionIndexSource {
  readonly writesDeltas = true;
  /** The commit and take scripts turn away a just-moved start or move: see SessionStore.refusesJustMoved. */
  readonly refusesJustMoved = true;
  readonly loadMaySkipSlide: boolean;
  readonly storeType: 'redis' | 'redis_cluster';
  /** Near-cache answers, counted only with a near cache (two integer increments: no cost worth a switch). */
  readonly nearCacheCounts: { hits: number; misses: number } | undefined;
  private readonly app: string;
  private limitText: LimitText | undefined;
  /**
   * False for a subclass that keeps its locks elsewhere (its own `tryLock`): its tokens are in no lock key of
   * this store, so its commits are not checked against one (they would all be refused); it fences them itself.
   */
  private readonly fencesLocks: boolean;
  /** The longest a commit's execution takes (its tries, WAIT included), from the connection's options. */
  private readonly commitBound: number;

  constructor(
    private readonly connection: RedisConnection,
    private readonly near?: SessionNearCache,
  ) {
    this.fencesLocks = this.tryLock === RedisSessionStore.prototype.tryLock;
    this.commitBound = connection.longestExecution(connection.replicaWaitTime);
    this.app = connection.options.applicationName;
    this.loadMaySkipSlide = near !== undefined;
    this.storeType = connection.isCluster ? 'redis_cluster' : 'redis';
    this.nearCacheCounts = near ? { hits: 0, misses: 0 } : undefined;
  }

  /** PINGs Redis (each master of a cluster), bounded by the operation timeout. */
  ping(): Promise<void> {
    return this.connection.ping();
  }

  get throwOnError(): boolean {
    return this.connection.options.throwOnError;
  }

  /**
   * Every call is one bounded {@link RedisConnection.execute} (a commit's with its WAIT time), a
   * near-cached load after an invalidation barrier bounded by the operation timeout. Not claimed by
   * subclasses, whose overrides may wait for other things.
   */
  get settlesWithinMs(): number | undefined {
    if (this.constructor !== RedisSessionStore) return undefined;
    const barrier = this.near ? this.connection.options.operationTimeout + BARRIER_SLACK : 0;
    return barrier + this.commitBound;
  }

  load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    const key = redisKeys.sessionData(this.app, sessionKey);
    return this.near ? this.loadNear(this.near, key, idleTimeoutMs) : this.read(key, idleTimeoutMs);
  }

  private async loadNear(
    near: SessionNearCache,
    key: string,
    idleTimeoutMs: number,
  ): Promise<SessionData | undefined> {
    const copy = await near.getConfirmed(key, idleTimeoutMs);
    if (copy !== undefined) {
      this.nearCacheCounts!.hits++;
      return copy.size === 0 ? undefined : copy;
    }
    this.nearCacheCounts!.misses++;
    const ticket = near.begin(key);
    let data: SessionData | undefined;
    let left = idleTimeoutMs;
    try {
      const reply = parseTrackedLoadReply(
        (await this.connection.execute('SESSION LOAD', () =>
          this.connection.script('sessionLoadTracked', key, idleTimeoutMs, near.slideEvery),
        )) as Buffer | (Buffer | number)[] | null,
      );
      if (reply) {
        data = reply.data;
        left = reply.timeLeftMs;
      }
    } catch (error) {
      near.drop(key, ticket);
      throw error;
    }
    // A load that slid wrote the key: its own invalidation will end the copy, so none is kept (nor evicts another).
    if (data !== undefined && left === idleTimeoutMs) near.drop(key, ticket);
    else near.loaded(key, ticket, data, idleTimeoutMs - left);
    return data;
  }

  private read(key: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    return this.connection
      .execute(
        'SESSION LOAD',
        () => this.connection.script('sessionLoad', key, idleTimeoutMs) as Promise<Buffer | Buffer[] | null>,
      )
      .then(parseLoadReply);
  }

  commit(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    const key = redisKeys.sessionData(this.app, sessionKey);
    return this.near
      ? this.commitNear(this.near, key, changes, idleTimeoutMs, limits)
      : this.write(key, changes, idleTimeoutMs, limits).then(ignoreVerdict);
  }

  private async commitNear(
    near: SessionNearCache,
    key: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits: SessionCommitLimits | undefined,
  ): Promise<void> {
    // Redis tells this instance of its own writes too (see RedisInvalidations): whatever the outcome, the copy
    // goes now rather than when that invalidation arrives, and a load in flight meanwhile is not kept.
    const ticket = near.begin(key);
    try {
      await this.write(key, changes, idleTimeoutMs, limits);
    } finally {
      near.drop(key, ticket);
    }
  }

  private write(
    key: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits: SessionCommitLimits | undefined,
  ): Promise<boolean> {
    const guard = guardedSessionId(changes);
    const mode = commitMode(changes, guard, true);
    const limitText = this.limitTextOf(limits);
    const args: (string | Buffer | number)[] = [
      key,
      idleTimeoutMs,
      mode,
      0, // DEADLINE: set when each try is sent
      limitText.maxKeys,
      limitText.maxSessionBytes,
      (this.fencesLocks && changes.lockToken) || '',
      changes.removed.size,
      ...changes.removed,
    ];
    for (const [key, value] of changes.set) {
      args.push(key, commandBytes(value));
    }
    const { waitForReplicas, waitForReplicasTimeout } = this.connection.options;
    const latest = this.latestDeadline(limits);
    const retryMode = changes.refuseIfMovedWithinMs === undefined ? mode : commitMode(changes, guard, false);
    if (waitForReplicas === 0) {
      let sent = false;
      return this.connection
        .execute('SESSION COMMIT', () => {
          // Each try (retries included) gets its own deadline: it is bounded by its own timeout. A retry
          // sends a copy: an earlier try's EVAL fallback (after NOSCRIPT) still reads its own arguments.
          const tryArgs = sent ? args.slice() : args;
          if (sent) tryArgs[MODE] = retryMode; // see commitMode
          sent = true;
          tryArgs[DEADLINE] = this.deadline(latest);
          return this.connection.scriptWith('sessionCommit', tryArgs);
        })
        .then((reply) => this.applied(reply, limits));
    }
    return this.writeAndWait(args, retryMode, limits, latest, waitForReplicas, waitForReplicasTimeout);
  }

  /**
   * When the app stops waiting for a commit, take or remove starting now, in Redis's clock, if that comes before
   * its own tries end (`session.ioTimeout` shorter than the Redis timeouts allow); undefined otherwise.
   */
  private latestDeadline(waiting: Pick<SessionCommitLimits, 'ioTimeout'> | undefined): number | undefined {
    const wait = waiting?.ioTimeout;
    return wait && wait < this.commitBound ? this.connection.redisNow() + wait : undefined;
  }

  /** A try's deadline: its own timeout's, or the app's `latest` when that comes first. */
  private deadline(latest: number | undefined): number {
    const own = this.connection.commitDeadline();
    return latest !== undefined && latest < own ? latest : own;
  }

  /**
   * The limits as the commit script's arguments, in text: turned into text once, not on every commit
   * (they are the app's options, the same on every commit).
   */
  private limitTextOf(limits: SessionCommitLimits | undefined): LimitText {
    const maxKeys = limits?.maxKeys ?? Number.MAX_SAFE_INTEGER;
    const maxSessionBytes = limits?.maxSessionBytes ?? Number.MAX_SAFE_INTEGER;
    const cached = this.limitText;
    if (cached?.keys === maxKeys && cached.bytes === maxSessionBytes) return cached;
    return (this.limitText = {
      keys: maxKeys,
      bytes: maxSessionBytes,
      maxKeys: String(maxKeys),
      maxSessionBytes: String(maxSessionBytes),
    });
  }

  /**
   * The commit script's verdict: true when it applied, false when the bound session it was for is gone
   * (revoked: nothing to save, and nothing may come back), throws what refused it otherwise.
   */
  private applied(reply: unknown, limits: SessionCommitLimits | undefined): boolean {
    const { status, detail } = parseCommitReply(reply);
    if (status === COMMIT_APPLIED || status === COMMIT_GONE) {
      this.connection.observeRedisTime(detail);
      return status === COMMIT_APPLIED;
    }
    if (status === COMMIT_MOVED) {
      this.connection.observeRedisTime(detail);
      throw new SessionMovedError();
    }
    if (status === COMMIT_LOCK_LOST) {
      this.connection.observeRedisTime(detail);
      throw new SessionLockLostError();
    }
    if (status === COMMIT_LATE) {
      this.connection.observeRedisTime(detail);
      throw pastDeadline('Session commit', 'SESSION COMMIT', this.connection.options.operationTimeout);
    }
    throw commitLimitExceeded(status === COMMIT_OVER_KEYS ? 'maxKeys' : 'maxSessionBytes', detail, limits);
  }

  private async writeAndWait(
    args: (string | Buffer | number)[],
    retryMode: string,
    limits: SessionCommitLimits | undefined,
    latest: number | undefined,
    waitForReplicas: number,
    waitForReplicasTimeout: number,
  ): Promise<boolean> {
    // Commit and WAIT in one pipeline: one round trip, and WAIT runs on the node that owns the session.
    let sent = false;
    const [reply, acknowledged] = await this.connection.execute(
      'SESSION COMMIT',
      () => {
        if (sent) args[MODE] = retryMode; // see commitMode
        sent = true;
        args[DEADLINE] = this.deadline(latest);
        return this.connection.scriptThenWait('sessionCommit', args, waitForReplicas, waitForReplicasTimeout);
      },
      waitForReplicasTimeout, // WAIT's own timeout comes on top of the operation timeout
    );
    const applied = this.applied(reply, limits);
    if (applied && acknowledged < waitForReplicas) {
      throw new RedisOperationError(
        `Session commit was acknowledged by ${acknowledged} of waitForReplicas=${waitForReplicas} replicas ` +
          `within waitForReplicasTimeoutInMilliseconds=${waitForReplicasTimeout}; it may be lost in a failover.`,
        'SESSION COMMIT',
      );
    }
    return applied;
  }

  async refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    const key = redisKeys.sessionData(this.app, sessionKey);
    // A slide is a write: Redis invalidates this instance's copy too (see commitNear).
    const ticket = this.near?.begin(key) ?? -1;
    try {
      await this.connection.execute('SESSION REFRESH', () =>
        this.connection.client.pexpire(key, idleTimeoutMs),
      );
    } finally {
      this.near?.drop(key, ticket);
    }
  }

  /**
   * Deletes the session; with `mark` (`abandon()`), leaves the ended mark in the same script, and with its
   * `lockToken` does neither unless that token still holds the session's lock (else SessionLockLostError).
   */
  async remove(sessionKey: string, mark?: EndedSessionMark): Promise<void> {
    const token = (this.fencesLocks && mark?.lockToken) || '';
    const latest = this.latestDeadline(mark);
    const reply = await this.deleting(sessionKey, 'SESSION REMOVE', (key) => {
      if (!mark) return this.connection.client.del(key);
      // Each try is bounded by its own deadline, as a commit's (the app answered 503: nothing happens later).
      const deadline = this.deadline(latest);
      // Without the mark, still fenced: a lost lock must not delete what the request after it wrote.
      const unmarked = () => this.connection.script('sessionEnd', key, 0, token, deadline);
      return withoutMarkWhileMigrating(
        () => this.connection.script('sessionEnd', key, mark.keepMs, token, deadline),
        unmarked,
      );
    });
    if (Number(reply) === -1)
      throw pastDeadline('Session remove', 'SESSION REMOVE', this.connection.options.operationTimeout);
    if (token !== '' && Number(reply) === 0) throw new SessionLockLostError();
  }

  /**
   * Deletes the session and answers what it held: one script (HGETALL, the moved mark, DEL); with the mark's
   * `lockToken`, nothing unless that token still holds the session's lock (else SessionLockLostError).
   */
  async take(sessionKey: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    const token = (this.fencesLocks && mark?.lockToken) || '';
    const latest = this.latestDeadline(mark);
    let within =
      mark?.refuseIfMovedWithinMs === undefined ? '' : String(Math.ceil(mark.refuseIfMovedWithinMs));
    const reply = await this.deleting(sessionKey, 'SESSION TAKE', (key) => {
      // Each try is bounded by its own deadline, as a commit's (the app answered 503: nothing happens later).
      const deadline = this.deadline(latest);
      // Only the first try may refuse: a retry may follow a try that moved it, and finds that try's own mark.
      const refuse = within;
      within = '';
      return withoutMarkWhileMigrating(
        () => this.connection.script('sessionTake', key, mark?.keepMs ?? 0, token, deadline, refuse),
        () => this.connection.script('sessionTake', key, 0, token, deadline),
      );
    });
    // The script's 0, -1 or -2 (strings on a client with stringNumbers), not a session: see sessionTake.
    if (typeof reply === 'number' || typeof reply === 'string') {
      if (Number(reply) === -1)
        throw pastDeadline('Session take', 'SESSION TAKE', this.connection.options.operationTimeout);
      if (Number(reply) === -2) throw new SessionMovedError();
      throw new SessionLockLostError();
    }
    return parseLoadReply(reply as Buffer | Buffer[] | null);
  }

  async endingOf(sessionKey: string): Promise<{ ending: SessionEnding; remainingMs: number } | undefined> {
    const key = redisKeys.sessionData(this.app, sessionKey);
    // While the session's slot migrates, the mark's key may not be on this node yet: read as no mark (as take and
    // remove then leave none).
    const reply = (await this.connection.execute('SESSION ENDING', () =>
      withoutMarkWhileMigrating(
        () => this.connection.script('sessionEnding', key),
        () => Promise.resolve(null),
      ),
    )) as [Buffer | string, number | string] | null;
    if (!reply) return undefined;
    const remainingMs = Number(reply[1]);
    // -1: a mark left without expiry (by hand); -2: gone between the two reads.
    if (!(remainingMs > 0)) return undefined;
    return { ending: String(reply[0]) === 'm' ? 'moved' : 'abandoned', remainingMs };
  }

  /**
   * Deletes the session if its key still holds the session `sessionId` (UserSessions' revocation).
   * Other instances' near-cache copies go through Redis's invalidation of the key; this instance's own
   * copy is dropped here, before its own invalidation arrives.
   */
  revoke(sessionKey: string, sessionId: string): Promise<void> {
    return this.deleting(sessionKey, 'SESSION REVOKE', (key) =>
      this.connection.script('userSessionRevoke', key, sessionId),
    ).then(ignoreVerdict);
  }

  /** Runs a command that deletes the session's hash; this instance's near-cache copy goes either way. */
  private async deleting<T>(
    sessionKey: string,
    name: string,
    command: (key: string) => Promise<T>,
  ): Promise<T> {
    const key = redisKeys.sessionData(this.app, sessionKey);
    const ticket = this.near?.begin(key) ?? -1;
    try {
      return await this.connection.execute(name, () => command(key));
    } finally {
      this.near?.drop(key, ticket);
    }
  }

  private users: UserSessionIndex | undefined;

  /** The index of sessions bound to users (UserSessions): one sorted set and one hash per user. */
  userSessionIndex(): UserSessionIndex {
    return (this.users ??= new RedisUserSessionIndex(this.connection, (key, id) => this.revoke(key, id)));
  }

  /**
   * Reentrant for `token` (see the `lockAcquire` script): safe to retry after a lost reply. Each try carries a
   * deadline, as a commit's: one that reaches Redis after the request stopped waiting takes nothing.
   */
  async tryLock(
    sessionKey: string,
    token: string,
    ttlMs: number,
    waiting?: Pick<SessionCommitLimits, 'ioTimeout'>,
  ): Promise<boolean> {
    const latest = this.latestDeadline(waiting);
    const reply = await this.connection.execute('SESSION LOCK', () =>
      this.connection.script(
        'lockAcquire',
        redisKeys.sessionLock(this.app, sessionKey),
        token,
        ttlMs,
        this.deadline(latest),
      ),
    );
    const status = Number(reply);
    if (status < 0) {
      // Late (its reply seen all the same: the estimate of Redis's clock was behind): a failure, not "held", so the
      // request does not wait out acquireTimeout for a lock nobody holds; the estimate is corrected (by a time in
      // epoch ms only: a -1 is no time).
      if (-status > REDIS_TIME_FLOOR_MS) this.connection.observeRedisTime(-status);
      throw pastDeadline('Session lock', 'SESSION LOCK', this.connection.options.operationTimeout);
    }
    return status === 1;
  }

  async renewLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.connection.execute('SESSION LOCK RENEW', () =>
      this.connection.script('lockRenew', redisKeys.sessionLock(this.app, sessionKey), token, ttlMs),
    );
    return Number(reply) === 1;
  }

  async unlock(sessionKey: string, token: string): Promise<void> {
    await this.connection.execute('SESSION UNLOCK', () =>
      this.connection.script('lockRelease', redisKeys.sessionLock(this.app, sessionKey), token),
    );
  }
}

/** Where the commit's mode (ARGV[2], see commitMode) and deadline (ARGV[3]) go in the arguments `write` builds. */
const MODE = 2;
const DEADLINE = 3;
/** The commit script's statuses (its reply's detail: Redis's time, or the count over a limit). */
const COMMIT_LATE = 0;
const COMMIT_APPLIED = 1;
const COMMIT_OVER_KEYS = 2;
/**
 * Nothing applied, and nothing to report: a guarded commit of a bound session that is gone (revoked or
 * expired), or a commit of a session abandoned since the request loaded it.
 */
const COMMIT_GONE = 4;
/** Nothing applied: the session moved to a new key (`regenerate()`) since the request loaded it. */
const COMMIT_MOVED = 5;
/** Nothing applied: the request's `session.lock` no longer holds (it expired; see SessionChanges.lockToken). */
const COMMIT_LOCK_LOST = 6;

/** The limits of the last commit, and as the commit script's arguments. */
interface LimitText {
  readonly keys: number;
  readonly bytes: number;
  readonly maxKeys: string;
  readonly maxSessionBytes: string;
}

/**
 * The commit script's ARGV[2]: '0' a delta, '1' a clear; `e` a delta and `f` a clear of a session the
 * request loaded from the store (turned away by an ended mark, see SessionChanges.ofStoredSession);
 * `g<id>` a delta and `c<id>` a clear that apply only while the stored session carries that id (a bound
 * session, see guardedSessionId); `n<ms>` a delta and `o<ms>` a clear of a session started under a key the
 * request found empty (turned away by a recent moved mark, see SessionChanges.refuseIfMovedWithinMs).
 */
function commitMode(changes: SessionChanges, guard: string | undefined, firstTry: boolean): string {
  const cleared = changes.cleared;
  if (guard !== undefined) return `${cleared ? 'c' : 'g'}${guard}`;
  if (changes.ofStoredSession === true) return cleared ? 'f' : 'e';
  const within = changes.refuseIfMovedWithinMs;
  // Only a first try: a retry may follow a try that applied, and a move since must not refuse it.
  if (within !== undefined && firstTry) return `${cleared ? 'o' : 'n'}${Math.ceil(within)}`;
  return cleared ? '1' : '0';
}

/**
 * A script that leaves an ended mark, or else `unmarked` when Redis Cluster refused the mark's key because the
 * session's slot is migrating and the mark's key is not on this node yet ("Script attempted to access a non
 * local key"): the mark's scripts write it before anything else, so the refused one changed nothing. The
 * session is then moved or ended without a mark, as by a store that keeps none: a rare window (a slot
 * migrating while a request of that session signs in or out) in which a late commit is not turned away.
 */
async function withoutMarkWhileMigrating<T>(
  marked: () => Promise<T>,
  unmarked: () => Promise<T>,
): Promise<T> {
  try {
    return await marked();
  } catch (error) {
    if (error instanceof Error && /non local key|TRYAGAIN/.test(error.message)) return unmarked();
    throw error;
  }
}

/** Below this (2001-09-09 in epoch ms), a number is not a Redis time. */
const REDIS_TIME_FLOOR_MS = 1e12;

/** A commit, take or remove that reached Redis after its deadline: nothing was applied (the app answered 503). */
function pastDeadline(what: string, operation: string, operationTimeout: number): RedisOperationError {
  return new RedisOperationError(
    `${what} reached Redis after its deadline (operationTimeoutInMilliseconds=${operationTimeout} after it was ` +
      'sent) and was not applied.',
    operation,
  );
}

/** A commit resolves with nothing: a gone session's commit is not the app's error. */
const ignoreVerdict = (): void => undefined;
