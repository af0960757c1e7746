import { Logger } from '@nestjs/common';
import type { DistributedCache } from '../../cache/distributed-cache.interface.js';
import { SessionRecordFormatError } from '../../errors/session.errors.js';
import { decodeSessionRecord, encodeSessionRecord } from './session-record.codec.js';
import type { SessionChanges, SessionData, SessionStore } from './session-store.interface.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/** A cache key no session key can be (session keys are base64url). */
const PING_KEY = '\u0000nest-session-state:ping';

/**
 * Sessions as whole records in any {@link DistributedCache} (ASP.NET's model): a commit writes the
 * complete session, so two concurrent requests that change different keys can lose one update.
 * Used when the app brings its own cache; the memory and Redis stores write deltas instead.
 *
 * @example
 * SessionModule.forRoot({ cache: myDistributedCache }); // sessions as whole records in your cache
 * const store = new CacheSessionStore(myDistributedCache, false); // throwOnError false: outages are not 503s
 */
@HiddenFromLogs()
export class CacheSessionStore implements SessionStore {
  readonly writesDeltas = false;
  readonly storeType = 'cache';
  private readonly logger = new Logger('CacheSessionStore');

  constructor(
    private readonly cache: DistributedCache,
    readonly throwOnError = true,
  ) {}

  /** Reads a key no session uses: the cache answering is the store answering. */
  async ping(): Promise<void> {
    await this.cache.get(PING_KEY);
  }

  async load(sessionKey: string): Promise<SessionData | undefined> {
    const bytes = await this.cache.get(sessionKey);
    if (bytes === undefined) return undefined;
    try {
      return decodeSessionRecord(bytes);
    } catch (error) {
      if (!(error instanceof SessionRecordFormatError)) throw error;
      // A record this version cannot read is treated like an expired session, not as an outage.
      logEvent(
        this.logger,
        SessionLogEvents.SessionRecordUnreadable,
        `${error.message} The session starts empty.`,
      );
      return undefined;
    }
  }

  async commit(sessionKey: string, changes: SessionChanges, idleTimeoutMs: number): Promise<void> {
    const data = changes.snapshot();
    if (data.size === 0) return this.cache.remove(sessionKey);
    await this.cache.set(sessionKey, encodeSessionRecord(data), { slidingExpiration: idleTimeoutMs });
  }

  refresh(sessionKey: string): Promise<void> {
    return this.cache.refresh(sessionKey);
  }

  remove(sessionKey: string): Promise<void> {
    return this.cache.remove(sessionKey);
  }
}
