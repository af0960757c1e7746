import { Logger } from '@nestjs/common';
import type { DistributedCache } from '../../cache/distributed-cache.interface.js';
import { CacheEntryTooLargeError } from '../../errors/cache.errors.js';
import {
  SessionLimitExceededError,
  SessionMovedError,
  SessionRecordFormatError,
} from '../../errors/session.errors.js';
import { decodeSessionRecord, encodeSessionRecord } from './session-record.codec.js';
import type {
  EndedSessionMark,
  SessionChanges,
  SessionCommitLimits,
  SessionData,
  SessionEnding,
  SessionStore,
} from './session-store.interface.js';
import { applyChanges, checkCommitLimits, isEmptySession } from './session-commit.limits.js';
import { movedWithin } from './ended-session.marks.js';
import { logEvent, SessionLogEvents } from '../../logging/session-log-events.js';
import { HiddenFromLogs } from '../../logging/hidden-from-logs.js';

/** A cache key no session key can be (session keys are base64url). */
const PING_KEY = '\u0000nest-session-state:ping';

/** Where an ended session's mark is kept: `:` is not base64url, so no session key is one. */
const endedMarkKey = (sessionKey: string): string => `nest-session-state:ended:${sessionKey}`;

/**
 * A mark's bytes: how the session ended (0 moved, 1 abandoned), when (epoch ms, float64) and for how long it is kept
 * (ms, float64). Its age is the reader's clock minus the writer's, never below 0: a writer whose clock is ahead makes
 * a move look just made (refused as such a little longer), never older than it is.
 */
const MARK_BYTES = 17;

/**
 * Sessions as whole records in any {@link DistributedCache} (the model of ASP.NET's session over
 * `IDistributedCache`), used when the app brings its own cache; the memory, Redis and PostgreSQL stores write
 * deltas in one atomic step instead.
 *
 * A commit reads the record as the cache holds it now, applies the request's changes to it (not to the copy the
 * request loaded) and writes it back: two requests that change different keys both persist unless their commits
 * overlap in the cache, between one's read and its write (ASP.NET writes the copy it loaded, so there the slower
 * request drops the other's change every time). `regenerate()` and `abandon()` leave a mark in the cache
 * (`nest-session-state:ended:<key>`, for the idle timeout), so a request that loaded the session before it ended
 * does not bring it back under the old key with its late commit. What the interface of a cache cannot give: an
 * atomic read-and-write, a deadline (a commit the app gave up on, 503, may still land if the cache applies it
 * late), and a lock.
 *
 * Round trips: a load is a `get`; a commit a `get` and a `set` (or `remove`), plus a `get` of the mark when the
 * session is gone; an abandon a `remove`, the mark's `set` and a second `remove`; a regenerate's move the mark's
 * `set`, a `get` and a `remove` (and a `get` of an earlier mark when the module asks), besides the commit under
 * the new key.
 *
 * @example
 * SessionModule.forRoot({ cache: myDistributedCache }); // sessions as whole records in your cache
 * const store = new CacheSessionStore(myDistributedCache, false); // throwOnError false: outages are not 503s
 */
@HiddenFromLogs()
export class CacheSessionStore implements SessionStore {
  readonly writesDeltas = true;
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
    return this.decode(await this.cache.get(sessionKey), 'The session starts empty.');
  }

  private async loadToMove(sessionKey: string): Promise<SessionData | undefined> {
    return this.decode(await this.cache.get(sessionKey), 'The session moves empty.');
  }

  async commit(
    sessionKey: string,
    changes: SessionChanges,
    idleTimeoutMs: number,
    limits?: SessionCommitLimits,
  ): Promise<void> {
    const stored = this.decode(await this.cache.get(sessionKey), 'This commit replaces it.');
    // Moved or abandoned since this request loaded it: see SessionChanges.ofStoredSession.
    if (stored === undefined && changes.ofStoredSession) {
      const ending = (await this.endingOf(sessionKey))?.ending;
      if (ending === 'moved') throw new SessionMovedError();
      if (ending === 'abandoned') return;
    }
    // Against what is stored, not what the request loaded: concurrent requests cannot add up past a limit.
    if (limits) checkCommitLimits(stored, changes, limits);
    const next = applyChanges(stored, changes);
    if (!isEmptySession(next)) {
      await this.cache
        .set(sessionKey, encodeSessionRecord(next), { slidingExpiration: idleTimeoutMs })
        .catch((error: unknown) => {
          // A permanent refusal of this session's size, not an outage: 413, as a session limit.
          if (!(error instanceof CacheEntryTooLargeError)) throw error;
          throw new SessionLimitExceededError(
            'sizeLimit',
            `This commit would grow the stored session to ${error.size} bytes, more than the whole memory cache ` +
              `holds (sizeLimit ${error.sizeLimit} bytes).`,
            "the cache's sizeLimit (MemoryDistributedCacheOptions.sizeLimit)",
          );
        });
    } else if (stored !== undefined) {
      await this.cache.remove(sessionKey);
    }
  }

  refresh(sessionKey: string): Promise<void> {
    return this.cache.refresh(sessionKey);
  }

  /**
   * With `mark` (a sign-out): the record is deleted, the mark written, and the record deleted again, which undoes a
   * commit that read the record before the first delete and wrote it back before the mark (one still landing later
   * brings the session back: the cache has no atomic step). The session is gone once the first delete answers: a
   * mark that cannot be written then is logged, not reported as a failed sign-out.
   */
  async remove(sessionKey: string, mark?: EndedSessionMark): Promise<void> {
    await this.cache.remove(sessionKey);
    if (!mark) return;
    try {
      await this.mark(sessionKey, 'abandoned', mark.keepMs);
      await this.cache.remove(sessionKey);
    } catch (error) {
      logEvent(
        this.logger,
        SessionLogEvents.SessionEndMarkNotWritten,
        'The session was deleted, but its ended mark could not be written: a request that loaded it before may ' +
          `still write under its key. ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  /**
   * The moved mark, then a `get` and a `remove`: not one atomic step (the cache has none), so a value committed
   * between the `get` and the `remove` does not move. The mark goes first: should its write fail, nothing is moved
   * or deleted yet (commits read a mark only when the record is gone).
   */
  async take(sessionKey: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    const previous = mark?.refuseIfMovedWithinMs !== undefined ? await this.endingOf(sessionKey) : undefined;
    if (mark) await this.mark(sessionKey, 'moved', mark.keepMs);
    const data = await this.loadToMove(sessionKey);
    // Moved by another request since this one loaded it: see EndedSessionMark.refuseIfMovedWithinMs.
    const within = mark?.refuseIfMovedWithinMs;
    if (data === undefined && within !== undefined && movedWithin(previous, mark!.keepMs, within))
      throw new SessionMovedError();
    if (data !== undefined) await this.cache.remove(sessionKey);
    return data;
  }

  async endingOf(sessionKey: string): Promise<{ ending: SessionEnding; remainingMs: number } | undefined> {
    const bytes = await this.cache.get(endedMarkKey(sessionKey));
    if (bytes == null || bytes.byteLength !== MARK_BYTES) return undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const age = Math.max(0, Date.now() - view.getFloat64(1));
    const remainingMs = view.getFloat64(9) - age;
    if (!(remainingMs > 0)) return undefined;
    return { ending: bytes[0] === 0 ? 'moved' : 'abandoned', remainingMs };
  }

  private async mark(sessionKey: string, ending: SessionEnding, keepMs: number): Promise<void> {
    const bytes = new Uint8Array(MARK_BYTES);
    bytes[0] = ending === 'moved' ? 0 : 1;
    const view = new DataView(bytes.buffer);
    view.setFloat64(1, Date.now());
    view.setFloat64(9, keepMs);
    await this.cache.set(endedMarkKey(sessionKey), bytes, { absoluteExpirationRelativeToNow: keepMs });
  }

  /**
   * A record as the cache answered it. `null` (the habit of caches that follow ASP.NET's `IDistributedCache`, or
   * of untyped ones) is no record, as `undefined` is; a record this version cannot read is treated like an expired
   * session, not as an outage.
   */
  private decode(bytes: Uint8Array | null | undefined, then: string): SessionData | undefined {
    if (bytes == null) return undefined;
    try {
      return decodeSessionRecord(bytes);
    } catch (error) {
      if (!(error instanceof SessionRecordFormatError)) throw error;
      logEvent(this.logger, SessionLogEvents.SessionRecordUnreadable, `${error.message} ${then}`);
      return undefined;
    }
  }
}
