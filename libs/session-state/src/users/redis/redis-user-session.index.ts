import { redisKeys } from '../../cache/redis/redis-keys.js';
import type { RedisConnection } from '../../cache/redis/redis.connection.js';
import {
  oldestFirst,
  type LiveUserSession,
  type UserSessionIndex,
  type UserSessionRecord,
} from '../user-session-index.interface.js';
import { userIndexKeys } from './redis-user-session.keys.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';
import { RedisOperationError } from '../../cache/redis/redis-cache.errors.js';

/** An index entry as read: the record (undefined when unreadable) and its expiry score. */
interface Entry {
  id: string;
  score: number;
  record: UserSessionRecord | undefined;
}

/**
 * The user index on Redis and Redis Cluster. Each call is a few one-slot scripts: the index's (one
 * slot per user) and one per session probed or revoked (each in its session's slot), run concurrently.
 *
 * Expiry: entries are scored by when their session expires. A session slides its idle timeout on
 * every request without touching the index, so a score in the past only makes the entry a candidate:
 * `add` probes the candidates, `list` probes every entry (it reports their expiry anyway), and each
 * probe either drops the entry (its session is gone) or rescores it. So entries of dead sessions go on
 * the user's next login or listing, and an index never holds more than `maxSessionsPerUser` live
 * entries plus the dead ones since the last access.
 *
 * Revocation order: first the session's data is deleted (`userSessionRevoke`, only while the key holds
 * that session), then the entry. A crash in between leaves an entry whose session is gone, which the
 * next access drops; the other order could leave a live session no index lists, so none could revoke it.
 */
@HiddenFromLogs()
export class RedisUserSessionIndex implements UserSessionIndex {
  private readonly app: string;

  constructor(
    private readonly connection: RedisConnection,
    /** Deletes a session's data if the key still holds `sessionId` (the store's, which knows its near cache). */
    private readonly revokeSession: (sessionKey: string, sessionId: string) => Promise<void>,
  ) {
    this.app = connection.options.applicationName;
  }

  async add(
    userId: string,
    record: Omit<UserSessionRecord, 'createdAt'>,
    idleTimeoutMs: number,
    ioTimeoutMs?: number,
    replacesKey?: string,
  ): Promise<LiveUserSession[]> {
    const keys = userIndexKeys(this.app, userId);
    // Every time the index keeps is in Redis's clock: the oldest sessions beyond maxSessionsPerUser are the same
    // whichever instance binds, and a listing (binding time beside expiry) reads one clock, even when the
    // instances' clocks disagree.
    const now = this.connection.redisNow();
    const full: UserSessionRecord = { ...record, createdAt: now };
    // When the caller stops waiting, if that comes before a try's own deadline (its tries go on, with retries).
    const latest = ioTimeoutMs === undefined ? undefined : now + ioTimeoutMs;
    // Each try with a deadline, as a commit's: an entry that reached Redis after the app answered 503 (a sign-in whose
    // bind failed, its session abandoned) would list a session no browser holds.
    const reply = (await this.connection.execute('USER INDEX ADD', () =>
      this.connection.script(
        'userIndexAdd',
        ...keys,
        record.sessionId,
        now + idleTimeoutMs,
        JSON.stringify(full),
        Math.min(this.connection.commitDeadline(), latest ?? Number.POSITIVE_INFINITY),
        replacesKey ?? '',
        record.sessionKey,
      ),
    )) as Buffer[] | number;
    if (typeof reply === 'number') {
      throw new RedisOperationError(
        `User index add reached Redis after its deadline (operationTimeoutInMilliseconds=` +
          `${this.connection.options.operationTimeout} after it was sent, or session.ioTimeout when shorter) and ` +
          'was not applied.',
        'USER INDEX ADD',
      );
    }
    // This session's own entry is probed too: a bind whose guarded commit found the session revoked applied
    // nothing, and its entry must not count as live (it could push an older, live session over the limit).
    return this.check(
      keys,
      parseEntries(reply),
      (entry) => entry.score <= now || entry.id === record.sessionId,
    );
  }

  async list(userId: string): Promise<LiveUserSession[]> {
    const keys = userIndexKeys(this.app, userId);
    const reply = (await this.connection.execute('USER INDEX READ', () =>
      this.connection.script('userIndexRead', ...keys),
    )) as Buffer[];
    return this.check(keys, parseEntries(reply), () => true);
  }

  async revoke(userId: string, sessions: readonly UserSessionRecord[]): Promise<void> {
    if (sessions.length === 0) return;
    // Data first, index second: see the class comment.
    await Promise.all(sessions.map((s) => this.revokeSession(s.sessionKey, s.sessionId)));
    await this.update(
      userIndexKeys(this.app, userId),
      sessions.map((s) => [s.sessionId, s.sessionKey]),
      [],
    );
  }

  async remove(userId: string, sessionId: string, sessionKey?: string): Promise<void> {
    await this.update(userIndexKeys(this.app, userId), [[sessionId, sessionKey ?? '']], []);
  }

  /**
   * Probes the entries `due` selects (the others are trusted as live until their score), drops the
   * dead and rescores the live, and returns the live ones oldest first.
   */
  private async check(
    keys: [string, string],
    entries: Entry[],
    due: (entry: Entry) => boolean,
  ): Promise<LiveUserSession[]> {
    const dead: [id: string, sessionKey: string][] = [];
    const rescored: (string | number)[] = [];
    const live: LiveUserSession[] = [];
    await Promise.all(
      entries.map(async (entry) => {
        const { record } = entry;
        if (!record) return void dead.push([entry.id, '']);
        if (!due(entry)) return void live.push({ ...record, expiresAt: entry.score });
        const [id, ttl] = (await this.connection.execute('USER SESSION PROBE', () =>
          this.connection.script('userSessionProbe', redisKeys.sessionData(this.app, record.sessionKey)),
        )) as [Buffer | null, number];
        if (id === null || id.toString('utf8') !== record.sessionId || ttl === -2) {
          return void dead.push([entry.id, record.sessionKey]);
        }
        // No TTL (-1) cannot happen for a session; it counts as "expires after one more idle timeout".
        const expiresAt = this.connection.redisNow() + (ttl >= 0 ? ttl : 0);
        if (expiresAt !== entry.score) rescored.push(entry.id, expiresAt);
        live.push({ ...record, expiresAt });
      }),
    );
    if (dead.length > 0 || rescored.length > 0) await this.update(keys, dead, rescored);
    return live.sort(oldestFirst);
  }

  /** Drops the `dead` entries (id, and the session key they were seen with), rescores the others. */
  private async update(
    keys: [string, string],
    dead: readonly (readonly [id: string, sessionKey: string])[],
    rescored: readonly (string | number)[],
  ): Promise<void> {
    await this.connection.execute('USER INDEX UPDATE', () =>
      this.connection.script('userIndexUpdate', ...keys, dead.length, ...dead.flat(), ...rescored),
    );
  }
}

function parseEntries(reply: Buffer[]): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i + 2 < reply.length; i += 3) {
    out.push({
      id: reply[i].toString('utf8'),
      score: Number(reply[i + 1].toString('utf8')),
      record: parseRecord(reply[i + 2].toString('utf8')),
    });
  }
  return out;
}

function parseRecord(json: string): UserSessionRecord | undefined {
  try {
    const value = JSON.parse(json) as UserSessionRecord;
    return typeof value?.sessionKey === 'string' && typeof value.sessionId === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
