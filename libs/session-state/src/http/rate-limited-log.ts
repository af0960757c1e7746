import type { Logger } from '@nestjs/common';
import { logEvent, type SessionLogEvent } from '../logging/session-log-events.js';

/** When an event was last written, and how many of it were held back since. */
interface EventWindow {
  lastAt: number;
  suppressed: number;
}

/**
 * Logs a recurring event (a bad cookie, say) at most once per interval, with the number of
 * occurrences it held back, so a flood of bad requests cannot flood the log. Each event has its own
 * interval: a flood of one (failed loads during an outage) never hides another (a failed commit, a
 * rejected TempData cookie), and the count it reports is of that event only.
 */
export class RateLimitedLog {
  private readonly windows = new Map<number, EventWindow>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  /** Writes the line at `event`'s level and with its name, unless this event was written within the interval. */
  write(event: SessionLogEvent, message: string): void {
    const now = Date.now();
    let window = this.windows.get(event.id);
    if (window === undefined) this.windows.set(event.id, (window = { lastAt: 0, suppressed: 0 }));
    if (now - window.lastAt < this.intervalMs) {
      window.suppressed++;
      return;
    }
    const held = window.suppressed > 0 ? ` (${window.suppressed} more since the last report)` : '';
    window.lastAt = now;
    window.suppressed = 0;
    logEvent(this.logger, event, `${message}${held}`);
  }
}
