/** First wait before a failed lock release is tried again, in ms; each later wait doubles, up to the cap. */
const FIRST_RETRY_DELAY = 250;
const MAX_RETRY_DELAY = 2_000;
/**
 * Retries waiting at most: an outage under load fails a release per request, and each would otherwise keep its own
 * loop for up to a TTL. Past it a failed release is left to expire, as before retries existed.
 */
const MAX_PENDING = 10_000;
/** Longest wait of {@link LockReleases.close} for lock tries on their way, in ms. */
export const MAX_TRIES_WAIT = 5_000;

/** Resolves when `promise` settles or after `ms`, whichever comes first. */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Releases of `session.lock` locks that failed (the store unreachable, a failover under way), tried again in the
 * background until one reaches the store or the lock would have expired by itself. A release is fenced by its token,
 * so a late one never frees a lock another request took since. Before, a lock whose release fell in an outage held
 * its session until its TTL ran out (30 s by default) after the store came back: a black-box probe saw most
 * sessions of a killed Cluster master, or of a 1 s database blip, answer 503 for 30 s.
 */
export class LockReleases {
  private readonly pending = new Set<NodeJS.Timeout>();
  /** Locks of this process not known released: held by a request, or a release being retried (token → key). */
  private readonly unreleased = new Map<string, string>();
  /** Lock tries on their way to the store, each settling within the store call's bound (see {@link trying}). */
  private readonly tries = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | undefined;

  /**
   * @param release a fenced release of `token`'s lock on `key`
   * @param triesWaitMs how long {@link close} waits for lock tries on their way (the store's own bound on a call)
   */
  constructor(
    private readonly release: (key: string, token: string) => Promise<unknown>,
    private readonly triesWaitMs = MAX_TRIES_WAIT,
  ) {}

  /** A request took `token`'s lock on `key`. */
  taken(key: string, token: string): void {
    // Bounded like the retries. A request whose end never comes keeps its entry while its lock expires in the store:
    // past the bound the oldest entry goes, the one most likely expired.
    if (this.unreleased.size >= MAX_PENDING) this.unreleased.delete(this.unreleased.keys().next().value!);
    this.unreleased.set(token, key);
  }

  /**
   * A request's try for `token`'s lock on `key` went out: `attempt` is the store's own call (true when it took the
   * lock). Until it settles the lock counts as taken: a try on its way when the application shuts down takes the
   * lock after {@link close} released what it knew of, and the request's own release then meets a closed store (a
   * probe: the visitor waited `acquireTimeout` and got 503 on every other instance for the lock's whole TTL). Settled,
   * it stays counted only if it took the lock (also when the request stopped waiting for it: its follow-up release
   * reports {@link released}); a try that took nothing, or failed (the request releases that one as unseen, and a
   * release that fails is {@link retry}'s), is dropped.
   */
  trying(key: string, token: string, attempt: Promise<boolean>): void {
    this.taken(key, token);
    const settled = attempt.then(
      (took) => {
        if (took) this.unreleased.set(token, key);
        else this.unreleased.delete(token);
      },
      () => {
        this.unreleased.delete(token);
      },
    );
    this.tries.add(settled);
    void settled.then(() => this.tries.delete(settled));
  }

  /** `token`'s lock was released (or found lost). */
  released(token: string): void {
    this.unreleased.delete(token);
  }

  /**
   * Tries to release `token`'s lock on `key` again, until it succeeds or `ttlMs` from now (its latest expiry). False
   * when it will not be tried again: after {@link close} (which released what it knew of), or past the bound.
   */
  retry(key: string, token: string, ttlMs: number): boolean {
    if (this.closed || this.pending.size >= MAX_PENDING || FIRST_RETRY_DELAY >= ttlMs) return false;
    const until = Date.now() + ttlMs;
    this.unreleased.set(token, key);
    const attempt = (delay: number): void => {
      if (this.closed || this.pending.size >= MAX_PENDING || Date.now() + delay >= until) {
        this.unreleased.delete(token);
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        if (this.closed) return;
        // A store's unlock that throws instead of rejecting must not escape the timer (an uncaught exception).
        Promise.resolve()
          .then(() => this.release(key, token))
          .then(
            () => this.unreleased.delete(token),
            () => attempt(Math.min(2 * delay, MAX_RETRY_DELAY)),
          );
      }, delay);
      timer.unref();
      this.pending.add(timer);
    };
    attempt(FIRST_RETRY_DELAY);
    return true;
  }

  /**
   * Stops every retry and releases, once, every lock of this process not known released (the application shuts
   * down). Nest's close does not wait for a request whose client left, and the store's connection closes next: a
   * lock such a request holds would otherwise block its visitor on every other instance for a whole TTL. Its
   * commit cannot land afterwards (the release fences it, and the connection is gone), and nobody was answered.
   */
  close(): Promise<void> {
    return (this.closing ??= this.releaseAll());
  }

  private async releaseAll(): Promise<void> {
    this.closed = true;
    for (const timer of this.pending) clearTimeout(timer);
    this.pending.clear();
    // A release sent before a try settles may reach the store first (PostgreSQL: another pooled connection). The
    // wait is bounded: a store that does not bound its own calls must not hold the shutdown up.
    if (this.tries.size > 0) await settledWithin(Promise.all(this.tries), this.triesWaitMs);
    const locks = [...this.unreleased];
    this.unreleased.clear();
    await Promise.allSettled(
      locks.map(([token, key]) => Promise.resolve().then(() => this.release(key, token))),
    );
  }
}
