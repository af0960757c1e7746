import type { Logger } from '@nestjs/common';
import { SessionLogEvents } from '../logging/session-log-events.js';
import { RateLimitedLog } from './rate-limited-log.js';

describe('RateLimitedLog', () => {
  function recording(): { logger: Logger; lines: string[] } {
    const lines: string[] = [];
    const record = (message: string) => void lines.push(message);
    return {
      logger: { warn: record, debug: record, error: record, log: record } as unknown as Logger,
      lines,
    };
  }

  it('writes each event at most once per interval, and reports how many of that event it held back', () => {
    const { logger, lines } = recording();
    const log = new RateLimitedLog(logger, 60_000);
    log.write(SessionLogEvents.SessionLoadFailed, 'load 1');
    log.write(SessionLogEvents.SessionLoadFailed, 'load 2');
    log.write(SessionLogEvents.SessionLoadFailed, 'load 3');
    expect(lines).toEqual(['[SessionLoadFailed] load 1']);
  });

  it('a flood of one event never hides another: each has its own interval and count', () => {
    const { logger, lines } = recording();
    const log = new RateLimitedLog(logger, 60_000);
    log.write(SessionLogEvents.SessionLoadFailed, 'load failed');
    log.write(SessionLogEvents.SessionLoadFailed, 'load failed again');
    log.write(SessionLogEvents.SessionCommitFailed, 'commit failed');
    log.write(SessionLogEvents.SessionResponseHoldOverflow, 'overflow');
    expect(lines).toEqual([
      '[SessionLoadFailed] load failed',
      '[SessionCommitFailed] commit failed',
      '[SessionResponseHoldOverflow] overflow',
    ]);
  });

  it('after the interval the next line carries the count held back', () => {
    const { logger, lines } = recording();
    const log = new RateLimitedLog(logger, 60_000);
    const realNow = Date.now;
    let now = 1_000_000;
    Date.now = () => now;
    try {
      log.write(SessionLogEvents.SessionCommitFailed, 'a');
      log.write(SessionLogEvents.SessionCommitFailed, 'b');
      log.write(SessionLogEvents.SessionCommitFailed, 'c');
      now += 60_000;
      log.write(SessionLogEvents.SessionCommitFailed, 'd');
    } finally {
      Date.now = realNow;
    }
    expect(lines).toEqual([
      '[SessionCommitFailed] a',
      '[SessionCommitFailed] d (2 more since the last report)',
    ]);
  });
});
