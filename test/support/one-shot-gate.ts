/**
 * Holds the next call that passes it, once armed, until `release()`: a test arms it, waits for `reached` (the call
 * waits there now), does what must happen meanwhile, then releases it.
 *
 * @example
 * const hold = gate.arm();
 * const answer = request(url).get('/login'); // its commit calls `await gate.pass()`
 * await hold.reached; ... hold.release();
 */
export class OneShotGate {
  private armed: { reached: () => void; until: Promise<void> } | undefined;

  arm(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const waiting = new Promise<void>((resolve) => (reached = resolve));
    this.armed = { reached, until: new Promise<void>((resolve) => (release = resolve)) };
    return { reached: waiting, release };
  }

  /** Waits there until released when armed (disarming it), else goes on at once. */
  async pass(): Promise<void> {
    const armed = this.armed;
    this.armed = undefined;
    if (!armed) return;
    armed.reached();
    await armed.until;
  }
}
