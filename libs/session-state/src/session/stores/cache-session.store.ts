import { Logger } from '@nestjs/common';
import type { DistributedCache } from '../../cache/distributed-cache.interface.js';
import { SessionRecordFormatError } from '../../errors/session.errors.js';
import { decodeSessionRecord, encodeSessionRecord } from './session-record.codec.js';
import type { SessionChanges, SessionData, SessionStore } from './session-store.interface.js';

/**
 * Sessions as whole records in any {@link DistributedCache} (ASP.NET's model): a commit writes the
 * complete session, so two concurrent requests that change different keys can lose one update.
 * Used when the app brings its own cache; the memory and Redis stores write deltas instead.
 *
 * @example
 * SessionModule.forRoot({ cache: myDistributedCache }); // sessions as whole records in your cache
 * const store = new CacheSessionStore(myDistributedCache, false); // throwOnError false: outages are not 503s
 */
export class CacheSessionStore implements SessionStore {
  readonly writesDeltas = false;
  private readonly logger = new Logger('CacheSessionStore');

  constructor(
    private readonly cache: DistributedCache,
    readonly throwOnError = true,
  ) {}

  async load(sessionKey: string): Promise<SessionData | undefined> {
    const bytes = await this.cache.get(sessionKey);
    if (bytes === undefined) return undefined;
    try {
      return decodeSessionRecord(bytes);
    } catch (error) {
      if (!(error instanceof SessionRecordFormatError)) throw error;
      // A record this version cannot read is treated like an expired session, not as an outage.
      this.logger.warn(`${error.message} The session starts empty.`);
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
