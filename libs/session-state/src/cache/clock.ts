/**
 * Where the memory cache reads the time; replace it in tests to control expiry exactly.
 *
 * @example
 * const frozen: Clock = { now: () => Date.UTC(2026, 0, 1) };
 * const cache = new MemoryDistributedCache({ clock: frozen });
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/**
 * The real time.
 *
 * @example
 * const cache = new MemoryDistributedCache({ clock: systemClock }); // the default
 */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * The clock an option gives, or the system clock. Throws a RangeError naming `option` (the module turns it into a
 * configuration error) when it has no `now()` method: otherwise every expiry would throw at the first request, and
 * the memory store would answer it as an outage (503).
 */
export function clockOption(clock: Clock | undefined, option: string): Clock {
  if (clock === undefined) return systemClock;
  if (typeof (clock as Partial<Clock> | null)?.now !== 'function') {
    throw new RangeError(
      `${option} must have a now() method returning epoch milliseconds, as { now: () => Date.now() } ` +
        `(got ${clock === null ? 'null' : typeof clock}). Leave it out for the system clock.`,
    );
  }
  return clock;
}

/**
 * A clock that moves only when told to: expiry in tests without sleeping.
 * @example
 * const clock = new ManualClock();
 * const cache = new MemoryDistributedCache({ clock });
 * clock.advance(20 * 60_000);
 */
export class ManualClock implements Clock {
  constructor(private current = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.current += ms;
  }
}
