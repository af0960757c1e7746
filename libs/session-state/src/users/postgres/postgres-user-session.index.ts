import type { PostgresConnection } from '../../cache/postgres/postgres.connection.js';
import {
  oldestFirst,
  type LiveUserSession,
  type UserSessionIndex,
  type UserSessionRecord,
} from '../user-session-index.interface.js';
import { postgresUserSessionSql, type PostgresUserSessionSql } from './postgres-user-session.sql.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';
import { PostgresOperationError } from '../../errors/postgres.errors.js';

interface EntryRow {
  session_id: string;
  session_key: string;
  created_at: number;
  metadata: Record<string, string>;
  expires_ms: number;
}

/**
 * The user index on PostgreSQL: one row per bound session in `<tableName>_users` (user, session id,
 * session key, created, metadata), read joined with the
 * session table, so a listing reports each session's expiry as stored and drops, in the same statement,
 * the entries whose session is gone (expired, revoked, or its key holding another session). Pruning
 * deletes the entries of the sessions it deletes. Every call is one or two bounded statements.
 *
 * Revocation order, as on Redis: the session's data first (only while its key holds that session),
 * then the entry. A bound session's commits go through the commit function, which applies them only
 * while the stored session still has the id the request loaded (`p_guard`), so a request in flight
 * cannot bring a revoked session back.
 */
@HiddenFromLogs()
export class PostgresUserSessionIndex implements UserSessionIndex {
  private readonly sql: PostgresUserSessionSql;

  constructor(private readonly connection: PostgresConnection) {
    this.sql = postgresUserSessionSql(connection.sql);
  }

  async add(
    userId: string,
    record: Omit<UserSessionRecord, 'createdAt'>,
    // Expiry is the session row's: the listing reads it from there.
    _idleTimeoutMs: number,
    ioTimeoutMs?: number,
    replacesKey?: string,
  ): Promise<LiveUserSession[]> {
    const createdAt = this.connection.options.clock.now();
    // A deadline as a commit's: an entry that reached the database after the app answered 503 (a sign-in whose
    // bind failed, its session abandoned) would list a session no browser holds.
    const own = this.connection.commitDeadline();
    const deadline =
      ioTimeoutMs === undefined ? own : Math.min(own, this.connection.databaseNow() + ioTimeoutMs);
    const values = [
      userId,
      record.sessionId,
      record.sessionKey,
      createdAt,
      JSON.stringify(record.metadata),
      deadline,
    ];
    const { rows } =
      replacesKey === undefined
        ? await this.connection.execute('user_add', this.sql.add, values)
        : await this.connection.execute('user_replace', this.sql.replace, [...values, replacesKey]);
    if (rows.length === 0) {
      throw new PostgresOperationError(
        `User index add reached PostgreSQL after its deadline (operationTimeoutInMilliseconds=` +
          `${this.connection.options.operationTimeout} after it was sent, or session.ioTimeout when shorter) and ` +
          'was not applied.',
        'USER INDEX ADD',
      );
    }
    return this.list(userId);
  }

  async list(userId: string): Promise<LiveUserSession[]> {
    const { rows } = await this.connection.execute<EntryRow>('user_list', this.sql.list, [
      userId,
      this.connection.options.clock.now(),
    ]);
    return rows
      .map((row) => ({
        sessionId: row.session_id,
        sessionKey: row.session_key,
        createdAt: Number(row.created_at),
        metadata: row.metadata,
        expiresAt: Number(row.expires_ms),
      }))
      .sort(oldestFirst);
  }

  async revoke(userId: string, sessions: readonly UserSessionRecord[]): Promise<void> {
    if (sessions.length === 0) return;
    await this.connection.execute('user_revoke', this.sql.revokeData, [
      sessions.map((s) => s.sessionKey),
      sessions.map((s) => Buffer.from(s.sessionId, 'utf8').toString('base64')),
    ]);
    await this.removeAll(
      userId,
      sessions.map((s) => s.sessionId),
      sessions.map((s) => s.sessionKey),
    );
  }

  remove(userId: string, sessionId: string, sessionKey?: string): Promise<void> {
    return this.removeAll(userId, [sessionId], [sessionKey ?? null]);
  }

  /** Drops the entries of `sessionIds`, each only while it records its key in `sessionKeys` (null: any). */
  private async removeAll(
    userId: string,
    sessionIds: readonly string[],
    sessionKeys: readonly (string | null)[],
  ): Promise<void> {
    await this.connection.execute('user_remove', this.sql.remove, [userId, sessionIds, sessionKeys]);
  }
}
