import { escapeField, unescapeField } from '../../cache/postgres/postgres-session.sql.js';
import type { PostgresConnection } from '../../cache/postgres/postgres.connection.js';
import { PostgresOperationError } from '../../errors/postgres.errors.js';
import { commitLimitExceeded } from './session-commit.limits.js';
import { SESSION_ID_FIELD } from '../session.js';
import type {
  SessionChanges,
  SessionCommitLimits,
  SessionData,
  SessionStore,
} from './session-store.interface.js';

/**
 * Loads and commits move the expiry only when it is more than this behind the full idle timeout (a
 * twentieth of it, at most a minute): reading a session slid moments ago writes nothing, and a commit then
 * changes no indexed column, so PostgreSQL updates the row in place (a HOT update). The commit function
 * computes the same step in SQL.
 */
export function slideStep(idleTimeoutMs: number): number {
  return Math.min(60_000, Math.floor(idleTimeoutMs / 20));
}

const COMMIT_LATE = 0;
const COMMIT_APPLIED = 1;
const COMMIT_OVER_KEYS = 2;

/**
 * Sessions in PostgreSQL: one row per session (`session_key`, `data` jsonb of base64 values,
 * `expires_at`). A load is one SELECT by primary key, followed by an UPDATE that slides the idle timeout
 * only when it was slid more than {@link slideStep} ago (never for a session that commits); a commit is
 * one statement too: for keys set only, an upsert merging them with `||` under the row lock (the common
 * case, no function); otherwise, or near a limit, or late, a call of the table's commit function, which
 * applies only what this request changed (set and removed keys, or a clear) under a per-session advisory lock, so concurrent requests writing different
 * keys both persist. The function also checks the session limits on what is stored, refuses to apply
 * past its deadline (a commit reported as failed never lands later) and deletes the session when it
 * is empty. Expired rows are ignored by every statement and deleted in batches by
 * {@link PostgresConnection.prune}. No session lock (`session.lock` is refused with this store).
 *
 * @example
 * SessionModule.forRoot({ postgres: { connectionString: process.env.DATABASE_URL } }); // uses a PostgresSessionStore
 * // by hand, over a connection you manage:
 * const store = new PostgresSessionStore(connection);
 */
export class PostgresSessionStore implements SessionStore {
  readonly writesDeltas = true;
  readonly storeType = 'postgresql';

  constructor(private readonly connection: PostgresConnection) {}

  get throwOnError(): boolean {
    return this.connection.options.throwOnError;
  }

  /** Every call is one bounded {@link PostgresConnection.execute}. Not claimed by subclasses. */
  get settlesWithinMs(): number | undefined {
    return this.constructor === PostgresSessionStore ? this.connection.longestExecution : undefined;
  }

  /** Runs `SELECT 1` on a pooled connection, bounded by the operation timeout. */
  async ping(): Promise<void> {
    await this.connection.execute('ping', 'SELECT 1', []);
  }

  async load(sessionKey: string, idleTimeoutMs: number): Promise<SessionData | undefined> {
    const now = this.connection.options.clock.now();
    const { sql } = this.connection;
    const result = await this.connection.execute<{ data: Record<string, string>; expires_ms: number }>(
      'load',
      sql.load,
      [sessionKey, now],
    );
    const row = result.rows[0];
    if (!row) return undefined;
    // A plain read (as cheap as a read gets) when the session was slid less than a step ago, which is
    // always the case for one that commits; otherwise a second statement slides it.
    const expires = now + idleTimeoutMs;
    if (row.expires_ms < expires - slideStep(idleTimeoutMs)) {
      await this.connection.execute('refresh', sql.refresh, [sessionKey, now, expires]);
    }
    const data: SessionData = new Map();
    for (const field of Object.keys(row.data)) {
      data.set(unescapeField(field), Buffer.from(row.data[field], 'base64'));
    }
    return data;
  }

  async commit(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    const now = this.connection.options.clock.now();
    const set: Record<string, string> = {};
    for (const [field, value] of changes.set) set[escapeField(field)] = base64(value);
    const removed = Array.from(changes.removed, escapeField);
    const { sql } = this.connection;
    const setJson = JSON.stringify(set);
    const maxKeys = limits?.maxKeys ?? Number.MAX_SAFE_INTEGER;
    const maxBytes = limits?.maxSessionBytes ?? Number.MAX_SAFE_INTEGER;
    const deadline = this.connection.commitDeadline();
    if (!changes.cleared && removed.length === 0 && hasUserKey(changes.set)) {
      // Upper bounds of what the limits count for the set alone (a new session): its JSON text, its keys.
      const alone = Buffer.byteLength(setJson) <= maxBytes && changes.set.size <= maxKeys;
      const quick = await this.connection.execute<{ db_ms: number }>('commit_set', sql.setOnly, [
        sessionKey,
        setJson,
        now,
        now + idleTimeoutMs,
        deadline,
        alone,
        changes.set.size,
        maxBytes,
        maxKeys,
      ]);
      if (quick.rows.length === 1) {
        this.connection.observeDatabaseTime(Number(quick.rows[0].db_ms));
        return;
      }
      // Not applied: near a limit, or late. The function decides exactly, and applies nothing when late.
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
    ]);
    const [status, detail] = result.rows[0].reply.map(Number);
    if (status === COMMIT_APPLIED) {
      this.connection.observeDatabaseTime(detail);
      return;
    }
    if (status === COMMIT_LATE) {
      this.connection.observeDatabaseTime(detail);
      throw new PostgresOperationError(
        'Session commit reached PostgreSQL after its deadline (operationTimeoutInMilliseconds=' +
          `${this.connection.options.operationTimeout} after it was sent) and was not applied.`,
        'commit',
      );
    }
    throw commitLimitExceeded(status === COMMIT_OVER_KEYS ? 'maxKeys' : 'maxSessionBytes', detail, limits);
  }

  async refresh(sessionKey: string, idleTimeoutMs: number): Promise<void> {
    const now = this.connection.options.clock.now();
    await this.connection.execute('refresh', this.connection.sql.refresh, [
      sessionKey,
      now,
      now + idleTimeoutMs,
    ]);
  }

  async remove(sessionKey: string): Promise<void> {
    await this.connection.execute('remove', this.connection.sql.remove, [sessionKey]);
  }

  /** Deletes expired sessions now (the module also does it every `pruneIntervalInMilliseconds`). */
  prune(): Promise<number> {
    return this.connection.prune();
  }
}

/** True when `set` holds a key of the app's (not only the reserved id): the commit cannot empty the session. */
function hasUserKey(set: ReadonlyMap<string, Uint8Array>): boolean {
  for (const key of set.keys()) if (key !== SESSION_ID_FIELD) return true;
  return false;
}

function base64(value: Uint8Array): string {
  return (
    Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  ).toString('base64');
}
