import type { Logger } from '@nestjs/common';
import { logEvent, type SessionLogEvent } from '../logging/session-log-events.js';

/**
 * Logs a recurring event (a bad cookie, say) at most once per interval, with the number of
 * occurrences it held back, so a flood of bad requests cannot flood the log.
 */
export class RateLimitedLog {
  private lastAt = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  /** Writes the line at `event`'s level and with its name, unless one was written within the interval. */
  write(event: SessionLogEvent, message: string): void {
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const held = this.suppressed > 0 ? ` (${this.suppressed} more since the last report)` : '';
    this.lastAt = now;
    this.suppressed = 0;
    logEvent(this.logger, event, `${message}${held}`);
  }
}
