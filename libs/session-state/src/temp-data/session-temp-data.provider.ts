import { SessionLimitExceededError, SessionNotLoadedError } from '../errors/session.errors.js';
import type { DistributedSession } from '../session/session.js';
import { keyInMessage } from '../errors/key-in-message.js';
import type { SessionRuntime } from '../session/session.runtime.js';
import {
  unchanged,
  type TempDataProvider,
  type TempDataSaveRefusal,
} from './temp-data-provider.interface.js';
import { decodeTempData, encodeTempData } from './temp-data.value-codec.js';
import { logEvent, SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** The session key that holds TempData with the session provider. */
export const TEMP_DATA_SESSION_KEY = '__TempData';

/** TempData kept in the session under one key (ASP.NET's SessionStateTempDataProvider). */
@HiddenFromLogs()
export class SessionTempDataProvider implements TempDataProvider {
  constructor(
    private readonly runtime: SessionRuntime,
    private readonly session: DistributedSession,
  ) {}

  /** The session's clear count when TempData loaded (see {@link loadedDiscarded}). */
  private clearsAtLoad = 0;

  load(): ReadonlyMap<string, unknown> {
    if (!this.session.isLoaded) throw new SessionNotLoadedError(true);
    this.clearsAtLoad = this.session.clears;
    const bytes = this.session.getBytes(TEMP_DATA_SESSION_KEY);
    if (!bytes) return new Map();
    try {
      return decodeTempData(bytes);
    } catch {
      logEvent(
        this.runtime.logger,
        SessionLogEvents.TempDataSessionValueMalformed,
        'TempData stored in the session was malformed and is dropped.',
      );
      this.session.remove(TEMP_DATA_SESSION_KEY);
      return new Map();
    }
  }

  /**
   * Refuses a `set` that would take TempData's session value past a session limit
   * (`SessionLimitExceededError`, 413, naming the key), so a value is refused where it is set rather
   * than TempData failing to save at the end of the request.
   */
  checkSize(values: ReadonlyMap<string, unknown>, key: string): void {
    this.session.checkLimits(
      TEMP_DATA_SESSION_KEY,
      encodeTempData(values),
      `TempData's session value "${TEMP_DATA_SESSION_KEY}", with TempData value "${keyInMessage(key)}",`,
      true, // as save() writes it: no larger than what is stored passes a lowered maxValueBytes
    );
  }

  /**
   * True once the session was abandoned or cleared after TempData loaded from it: the values it held (a signed-out
   * user's messages) went with it and are not written into the session that follows.
   */
  loadedDiscarded(): boolean {
    return this.session.clears !== this.clearsAtLoad;
  }

  save(
    values: ReadonlyMap<string, unknown>,
    loaded: ReadonlyMap<string, unknown>,
  ): TempDataSaveRefusal | undefined {
    if (!this.session.isLoaded || !this.session.isAvailable) return;
    if (!this.loadedDiscarded() && unchanged(values, loaded)) return;
    if (values.size === 0) {
      if (this.session.has(TEMP_DATA_SESSION_KEY)) this.session.remove(TEMP_DATA_SESSION_KEY);
      return;
    }
    try {
      // Over maxValueBytes when no larger than what is stored (written under a larger limit): what was read goes.
      this.session.replaceBytes(TEMP_DATA_SESSION_KEY, encodeTempData(values));
    } catch (error) {
      // Only kept values can get here (a set over a limit throws at set).
      if (!(error instanceof SessionLimitExceededError)) throw error;
      return {
        reason: `TempData's session value "${TEMP_DATA_SESSION_KEY}" would pass ${error.option}`,
      };
    }
  }
}
