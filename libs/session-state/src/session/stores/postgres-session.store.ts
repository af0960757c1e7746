import { escapeField, unescapeField } from '../../cache/postgres/postgres-session.sql.js';
import type { PostgresConnection } from '../../cache/postgres/postgres.connection.js';
import { StatementBatcher } from '../../cache/postgres/statement-batcher.js';
import { PostgresOperationError } from '../../errors/postgres.errors.js';
import { SessionLockLostError, SessionMovedError } from '../../errors/session.errors.js';
import { commitLimitExceeded } from './session-commit.limits.js';
import { PostgresUserSessionIndex } from '../../users/postgres/postgres-user-session.index.js';
import { guardedSessionId } from '../../users/user-session.fields.js';
import type { UserSessionIndex, UserSessionIndexSource } from '../../users/user-session-index.interface.js';
import { SESSION_ID_FIELD } from '../session.js';
import type {
  EndedSessionMark,
  SessionChanges,
  SessionCommitLimits,
  SessionData,
  SessionEnding,
  SessionStore,
} from './session-store.interface.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/**
 * Loads and commits move the expiry only when it is more than this behind the full idle timeout (a
 * twentieth of it, at most a minute): reading a session slid moments ago writes nothing, and a commit then
 * changes no indexed column, so PostgreSQL updates the row in place (a HOT update). The commit function
 * computes the same step in SQL.
 */
export function slideStep(idleTimeoutMs: number): number {
  return Math.min(60_000, Math.floor(idleTimeoutMs / 20));
}

/** Sessions per batched statement at most (see {@link StatementBatcher}). */
const MAX_BATCH = 64;

// The commit function's statuses (its reply is {status, detail}). The others resolve, the database's time in
// detail: 1 applied, 4 a guarded commit of a bound session that is gone (revoked or expired), 7 the session the
// request loaded was abandoned (`abandon()`, an ended mark `a`); nothing applied for 4 and 7.
const COMMIT_LATE = 0;
/** Over a limit, nothing applied; detail: the count. */
const COMMIT_OVER_KEYS = 2;
const COMMIT_OVER_BYTES = 3;
/** Nothing applied: the session the request loaded moved (`regenerate()`, an ended mark `m`): SessionMovedError. */
const COMMIT_MOVED = 5;
/** Nothing applied: the request's `session.lock` no longer holds (see SessionChanges.lockToken); as on Redis. */
const COMMIT_LOCK_LOST = 6;

/**
 * Sessions in PostgreSQL: one row per session (`session_key`, `data` jsonb of base64 values,
 * `expires_at`). A load is one SELECT by primary key, followed by an UPDATE that slides the idle timeout
 * only when it was slid more than {@link slideStep} ago (never for a session that commits); a commit is
 * one statement too: for keys set only, an UPDATE merging them with `||` into the live row under its lock
 * (the common case: a session the request loaded; no function), or an upsert for a new session; otherwise, or near a limit, or late, a call of the table's commit function, which
 * applies only what this request changed (set and removed keys, or a clear) under a per-session advisory lock, so concurrent requests writing different
 * keys both persist. The function also checks the session limits on what is stored, refuses to apply
 * past its deadline (a commit reported as failed never lands later) and deletes the session when it
 * is empty. A session bound to a user (UserSessions) always commits through the function, which applies
 * it only while the stored session still has the id the request loaded. Concurrent loads and plain
 * upserts share statements ({@link StatementBatcher}: one of each in flight, what arrives meanwhile goes
 * out together). Expired rows are ignored by every statement and deleted in batches by
 * {@link PostgresConnection.prune}. The session lock (`session.lock`) is a row of `<tableName>_locks` whose
 * expiry is judged by the database's clock; a commit under it always goes to the function, which checks the
 * lock in the same transaction as the write (see {@link tryLock}), and {@link take} and {@link remove} under it check
 * it in their statement. Only locks this class's own `tryLock` takes are checked: a subclass that replaces `tryLock`
 * (locks kept elsewhere) commits, takes and removes unfenced, as on the memory store.
 * Ended-session marks (`EndedSessionMark`) are rows of `<tableName>_ended` (`m` moved, `a` abandoned, until when
 * in the app's clock), left by {@link take} and {@link remove} in the statement that deletes the session: a commit
 * of a request that loaded the session (`SessionChanges.ofStoredSession`) never inserts the row (its fast path
 * is an UPDATE), and the function, finding no live row but a live mark, applies nothing (SessionMovedError after
 * a move; resolves after an abandon). A session created afresh under the key deletes the key's mark. A request
 * that found no session under its cookie's key and starts one there (`SessionChanges.refuseIfMovedWithinMs`) commits
 * through the function, which refuses it after a recent move; the take runs in a function too, behind the same
 * per-session advisory lock as the commit function, so such a start and a sign-in's take see each other's work.
 *
 * @example
 * SessionModule.forRoot({ postgres: { connectionString: process.env.DATABASE_URL } }); // uses a PostgresSessionStore
 * // by hand, over a connection you manage:
 * const store = new PostgresSessionStore(connection);
 */
@HiddenFromLogs()
export class PostgresSessionStore implements SessionStore, UserSessionIndexSource {
  readonly writesDeltas = true;
  private readonly loads: StatementBatcher<LoadItem, StoredRow | undefined>;
  /** Upserts of commits that may create the session (the request did not load it). */
  private readonly quickCommits: StatementBatcher<QuickCommit, number | undefined>;
  /** UPDATEs of commits of sessions the requests loaded: never an insert (see SessionChanges.ofStoredSession). */
  private readonly quickUpdates: StatementBatcher<QuickCommit, number | undefined>;
  readonly storeType = 'postgresql';
  /**
   * The commit function turns away a just-moved start, and the take function a just-moved move, each behind the
   * session's advisory lock that both take first: see SessionStore.refusesJustMoved.
   */
  readonly refusesJustMoved = true;
  /** False for a subclass that keeps its locks elsewhere: its tokens are not in the lock table. */
  private readonly fencesLocks: boolean;

  constructor(private readonly connection: PostgresConnection) {
    this.fencesLocks = this.tryLock === PostgresSessionStore.prototype.tryLock;
    const abandoned = (item: { abandoned: boolean }) => item.abandoned;
    this.loads = new StatementBatcher<LoadItem, StoredRow | undefined>(
      (items) => this.sendLoads(items),
      MAX_BATCH,
      () => true,
      abandoned,
    );
    this.quickCommits = new StatementBatcher(
      (items) => this.sendQuickCommits(items),
      MAX_BATCH,
      joinsCommits,
      abandoned,
    );
    this.quickUpdates = new StatementBatcher(
      (items) => this.sendQuickUpdates(items),
      MAX_BATCH,
      joinsCommits,
      abandoned,
    );
  }

  get throwOnError(): boolean {
    return this.connection.options.throwOnError;
  }

  /**
   * A commit's, take's or remove's deadline in the database's clock: the connection's (its operation timeout), or
   * when the app stops waiting (`session.ioTimeout`, passed with the limits or the mark) if that comes first, so a
   * 503 never applies later.
   */
  private commitDeadline(waiting: Pick<SessionCommitLimits, 'ioTimeout'> | undefined): number {
    const own = this.connection.commitDeadline();
    const wait = waiting?.ioTimeout;
    if (!wait || wait >= this.connection.longestExecution) return own;
    return Math.min(own, this.connection.databaseNow() + wait);
  }

  /**
   * Every call is at most two bounded {@link PostgresConnection.execute}s one after the other: a load and its slide,
   * or a commit's plain statement and then the function when it refused. Not claimed by subclasses.
   */
  get settlesWithinMs(): number | undefined {
    return this.constructor === PostgresSessionStore ? 2 * this.connection.longestExecution : undefined;
  }

  /** Runs `SELECT 1` on a pooled connection, bounded by the operation timeout. */
  async ping(): Promise<void> {
    await this.connection.execute('ping', 'SELECT 1', []);
  }

  async load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    const now = this.connection.options.clock.now();
    const { sql } = this.connection;
    const item: LoadItem = { key: sessionKey, now, abandoned: false };
    const row = await this.connection.bound(this.loads.submit(item), 'load', () => {
      item.abandoned = true;
    });
    if (!row) return undefined;
    // A plain read (as cheap as a read gets) when the session was slid less than a step ago, which is
    // always the case for one that commits; otherwise a second statement slides it.
    const expires = now + idleTimeoutMs;
    if (row.expires_ms < expires - slideStep(idleTimeoutMs)) {
      await this.connection.execute('refresh', sql.refresh, [sessionKey, now, expires]);
    }
    return decodeData(row.data);
  }

  async commit(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    const now = this.connection.options.clock.now();
    // No prototype: a key named "__proto__" is a field like any other (on a plain object it sets nothing).
    const set = Object.create(null) as Record<string, string>;
    for (const [field, value] of changes.set) set[escapeField(field)] = base64(value);
    const removed = Array.from(changes.removed, escapeField);
    const { sql } = this.connection;
    const setJson = JSON.stringify(set);
    const maxKeys = limits?.maxKeys ?? Number.MAX_SAFE_INTEGER;
    const maxBytes = limits?.maxSessionBytes ?? Number.MAX_SAFE_INTEGER;
    const deadline = this.commitDeadline(limits);
    // A session bound to a user commits through the function, which applies it only while the stored
    // session is still the one this request loaded (the plain upsert could bring a revoked one back).
    const guard = guardedSessionId(changes);
    const lockToken = this.fencesLocks ? (changes.lockToken ?? null) : null;
    const ofStored = changes.ofStoredSession === true;
    const refuseMs = changes.refuseIfMovedWithinMs ?? null;
    // Under session.lock the function checks the lock with the write; the plain statements would bypass it. A start
    // under a key the request found empty goes to the function too, which judges a recent move there under the
    // advisory lock a take holds until its mark is committed (the upsert would start the session beside the mark).
    if (
      guard === undefined &&
      lockToken === null &&
      refuseMs === null &&
      !changes.cleared &&
      removed.length === 0 &&
      hasUserKey(changes.set)
    ) {
      // Upper bounds of what the limits count for the set alone (a new session): its JSON text, its keys.
      // Otherwise the plain upsert would apply nothing: straight to the function.
      if (Buffer.byteLength(setJson) <= maxBytes && changes.set.size <= maxKeys) {
        const item: QuickCommit = {
          key: sessionKey,
          setJson,
          keys: changes.set.size,
          now,
          expires: now + idleTimeoutMs,
          deadline,
          maxKeys,
          maxBytes,
          abandoned: false,
        };
        // A session the request loaded is only updated: were its row gone (moved or abandoned meanwhile), an
        // upsert would bring the old key back. No row updated: the function decides (ended marks included).
        const batcher = ofStored ? this.quickUpdates : this.quickCommits;
        const name = ofStored ? 'commit_update' : 'commit_set';
        const dbMs = await this.connection.bound(batcher.submit(item), name, () => {
          item.abandoned = true;
        });
        if (dbMs !== undefined) {
          this.connection.observeDatabaseTime(dbMs);
          return;
        }
      }
      // Not applied: near a limit, late, or (a loaded session) no live row. The function decides exactly, and
      // applies nothing when late.
    }
    const result = await this.connection.execute<{ reply: number[] }>('commit', sql.commit, [
      sessionKey,
      now,
      now + idleTimeoutMs,
      deadline,
      changes.cleared,
      removed,
      setJson,
      maxKeys,
      maxBytes,
      guard === undefined ? null : Buffer.from(guard, 'utf8').toString('base64'),
      lockToken,
      ofStored,
      refuseMs,
    ]);
    const [status, detail] = result.rows[0].reply.map(Number);
    if (status === COMMIT_OVER_KEYS || status === COMMIT_OVER_BYTES) {
      throw commitLimitExceeded(status === COMMIT_OVER_KEYS ? 'maxKeys' : 'maxSessionBytes', detail, limits);
    }
    // Every other status carries the database's time.
    this.connection.observeDatabaseTime(detail);
    if (status === COMMIT_MOVED) throw new SessionMovedError();
    if (status === COMMIT_LOCK_LOST) throw new SessionLockLostError();
    if (status === COMMIT_LATE) throw this.pastDeadline('commit');
    // Applied (1); or nothing to apply (4, 7): see the statuses above.
  }

  async refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    const now = this.connection.options.clock.now();
    await this.connection.execute('refresh', this.connection.sql.refresh, [
      sessionKey,
      now,
      now + idleTimeoutMs,
    ]);
  }

  /**
   * Deletes the session; with `mark` (`abandon()`), leaves the abandoned mark `a` for `keepMs` (app's clock) in
   * the same statement: one `DELETE` with the mark's upsert in a CTE. With the mark's `lockToken`, the statement
   * checks the lock row first and applies nothing when the token no longer holds it (SessionLockLostError).
   */
  async remove(sessionKey: string, mark?: EndedSessionMark): Promise<void> {
    const result = await this.connection.execute<{ held: boolean; in_time: boolean }>(
      'remove',
      this.connection.sql.remove,
      [
        sessionKey,
        mark ? this.connection.options.clock.now() + mark.keepMs : null,
        this.fencingToken(mark),
        mark ? this.commitDeadline(mark) : null,
      ],
    );
    const row = result.rows[0];
    if (!row.in_time) throw this.pastDeadline('remove');
    if (!row.held) throw new SessionLockLostError();
  }

  /** A commit, take or remove that ran after its deadline: nothing was applied (the app answered 503). */
  private pastDeadline(name: string): PostgresOperationError {
    return new PostgresOperationError(
      `Session ${name} reached PostgreSQL after its deadline (operationTimeoutInMilliseconds=` +
        `${this.connection.options.operationTimeout} after it was sent) and was not applied.`,
      name,
    );
  }

  /**
   * Takes the session's lock for `ttlMs` of the database's clock, or renews it when `token` holds it already
   * (reentrant: a retry after a lost reply finds its own lock): one `INSERT ... ON CONFLICT DO UPDATE` that
   * takes over only an expired lock or one of the same token, answers no from a plain read while another token's
   * lock is live, and takes nothing once past the app's deadline.
   */
  async tryLock(
    sessionKey: string,
    token: string,
    ttlMs: number,
    waiting?: Pick<SessionCommitLimits, 'ioTimeout'>,
  ): Promise<boolean> {
    const result = await this.connection.execute('lock', this.connection.sql.tryLock, [
      sessionKey,
      token,
      ttlMs,
      // A try that reaches the database after the app stopped waiting (its operation timeout, or a shorter
      // session.ioTimeout) takes nothing: nobody would release it.
      this.commitDeadline(waiting),
    ]);
    return result.rows.length === 1;
  }

  /** Extends the lock while `token` holds it unexpired; never takes a free or expired one. */
  async renewLock(sessionKey: string, token: string, ttlMs: number): Promise<boolean> {
    const result = await this.connection.execute('lock_renew', this.connection.sql.renewLock, [
      sessionKey,
      token,
      ttlMs,
    ]);
    return result.rows.length === 1;
  }

  /** Deletes the lock's row if `token` still holds it (another token's lock is left alone). */
  async unlock(sessionKey: string, token: string): Promise<void> {
    await this.connection.execute('unlock', this.connection.sql.unlock, [sessionKey, token]);
  }

  /**
   * Deletes the session and answers what it held: one call of the take function (the session's advisory lock, then
   * one `DELETE ... RETURNING`); with `mark` (`regenerate()`), the moved mark `m` for `keepMs` (app's clock) is left
   * in the same statement (a CTE). With the mark's `lockToken`, the statement checks the lock row first and takes
   * nothing when the token no longer holds it (SessionLockLostError).
   */
  async take(sessionKey: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    const now = this.connection.options.clock.now();
    const result = await this.connection.execute<{
      held: boolean;
      in_time: boolean;
      data: Record<string, string> | null;
      live: boolean | null;
      moved: boolean;
    }>('take', this.connection.sql.take, [
      sessionKey,
      now,
      mark ? now + mark.keepMs : null,
      this.fencingToken(mark),
      this.commitDeadline(mark),
      mark?.refuseIfMovedWithinMs ?? null,
    ]);
    const row = result.rows[0];
    if (!row.in_time) throw this.pastDeadline('take');
    if (!row.held) throw new SessionLockLostError();
    if (row.moved) throw new SessionMovedError(); // see EndedSessionMark.refuseIfMovedWithinMs
    return row.live ? decodeData(row.data!) : undefined;
  }

  async endingOf(sessionKey: string): Promise<{ ending: SessionEnding; remainingMs: number } | undefined> {
    const result = await this.connection.execute<{ ending: string; until_ms: number }>(
      'ending',
      this.connection.sql.ending,
      [sessionKey],
    );
    const row = result.rows[0];
    // The mark's expiry was written in the app's clock (see take), and is read so.
    const remainingMs = row ? Number(row.until_ms) - this.connection.options.clock.now() : 0;
    if (!row || remainingMs <= 0) return undefined;
    return { ending: row.ending === 'm' ? 'moved' : 'abandoned', remainingMs };
  }

  /** The lock token a take or remove is fenced by: only for locks this class's own `tryLock` takes (see commit). */
  private fencingToken(mark: EndedSessionMark | undefined): string | null {
    return this.fencesLocks ? (mark?.lockToken ?? null) : null;
  }

  /** One session alone: the plain statement; several: one statement for all of them. */
  private async sendLoads(items: readonly LoadItem[]): Promise<(StoredRow | undefined)[]> {
    const { sql } = this.connection;
    if (items.length === 1) {
      const result = await this.connection.execute<StoredRow>('load', sql.load, [items[0].key, items[0].now]);
      return [result.rows[0]];
    }
    const result = await this.connection.execute<StoredRow & { session_key: string }>(
      'load_many',
      sql.loadMany,
      [items.map((item) => item.key), Math.max(...items.map((item) => item.now))],
    );
    const rows = new Map(result.rows.map((row) => [row.session_key, row]));
    return items.map((item) => rows.get(item.key));
  }

  /**
   * The database's time for each commit applied, undefined for one left to the commit function: upserts (the
   * session may be created) for commits of requests that did not load their session.
   */
  private sendQuickCommits(items: readonly QuickCommit[]): Promise<(number | undefined)[]> {
    const { sql } = this.connection;
    return this.sendSets(items, ['commit_set', sql.setOnly], ['commit_set_many', sql.setOnlyMany], (item) => [
      item.key,
      item.setJson,
      item.now,
      item.expires,
      item.deadline,
      true,
      item.keys,
      item.maxBytes,
      item.maxKeys,
    ]);
  }

  /** {@link sendQuickCommits} for sessions the requests loaded: UPDATEs of live rows, never inserts. */
  private sendQuickUpdates(items: readonly QuickCommit[]): Promise<(number | undefined)[]> {
    const { sql } = this.connection;
    return this.sendSets(
      items,
      ['commit_update', sql.setExisting],
      ['commit_update_many', sql.setExistingMany],
      (item) => [
        item.key,
        item.setJson,
        item.now,
        item.expires,
        item.deadline,
        item.keys,
        item.maxBytes,
        item.maxKeys,
      ],
    );
  }

  /** One commit alone: the plain statement with `oneArgs`; several: one statement for all of them. */
  private async sendSets(
    items: readonly QuickCommit[],
    [oneName, one]: [string, string],
    [manyName, many]: [string, string],
    oneArgs: (item: QuickCommit) => unknown[],
  ): Promise<(number | undefined)[]> {
    if (items.length === 1) {
      const result = await this.connection.execute<{ db_ms: number }>(oneName, one, oneArgs(items[0]));
      return [result.rows.length === 1 ? Number(result.rows[0].db_ms) : undefined];
    }
    // Both batched statements take the same arguments: keys, sets, expiries, now, deadline, limits.
    const result = await this.connection.execute<{ session_key: string; db_ms: number }>(manyName, many, [
      items.map((item) => item.key),
      items.map((item) => item.setJson),
      items.map((item) => item.expires),
      Math.max(...items.map((item) => item.now)),
      Math.min(...items.map((item) => item.deadline)),
      items[0].maxBytes,
      items[0].maxKeys,
    ]);
    const applied = new Map(result.rows.map((row) => [row.session_key, Number(row.db_ms)]));
    return items.map((item) => applied.get(item.key));
  }

  private users: UserSessionIndex | undefined;

  /** The index of sessions bound to users (UserSessions): the `<tableName>_users` table. */
  userSessionIndex(): UserSessionIndex {
    return (this.users ??= new PostgresUserSessionIndex(this.connection));
  }

  /** Deletes expired sessions now (the module also does it every `pruneIntervalInMilliseconds`). */
  prune(): Promise<number> {
    return this.connection.prune();
  }
}

interface StoredRow {
  data: Record<string, string>;
  expires_ms: number;
}

interface LoadItem {
  readonly key: string;
  readonly now: number;
  /** Its caller stopped waiting (timed out) before it was sent: not sent. */
  abandoned: boolean;
}

/** A commit that only sets keys and is within the limits alone: the plain upsert may apply it. */
interface QuickCommit {
  readonly key: string;
  readonly setJson: string;
  readonly keys: number;
  readonly now: number;
  readonly expires: number;
  readonly deadline: number;
  readonly maxKeys: number;
  readonly maxBytes: number;
  /** Its caller stopped waiting (timed out) before it was sent: not sent, so it never lands. */
  abandoned: boolean;
}

/** A session appears once per upsert, and one statement has one pair of limits. */
function joinsCommits(taken: readonly QuickCommit[], item: QuickCommit): boolean {
  if (taken.length === 0) return true;
  if (taken[0].maxKeys !== item.maxKeys || taken[0].maxBytes !== item.maxBytes) return false;
  for (const other of taken) if (other.key === item.key) return false;
  return true;
}

/** True when `set` holds a key of the app's (not only the reserved id): the commit cannot empty the session. */
function hasUserKey(set: ReadonlyMap<string, Uint8Array>): boolean {
  for (const key of set.keys()) if (key !== SESSION_ID_FIELD) return true;
  return false;
}

/** A row's `data` (escaped field names, base64 values) as session values. */
function decodeData(stored: Record<string, string>): SessionData {
  const data: SessionData = new Map();
  for (const field of Object.keys(stored))
    data.set(unescapeField(field), Buffer.from(stored[field], 'base64'));
  return data;
}

function base64(value: Uint8Array): string {
  return (
    Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  ).toString('base64');
}
