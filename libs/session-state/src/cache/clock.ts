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
