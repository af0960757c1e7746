import { performance } from 'node:perf_hooks';

interface Pending {
  readonly at: number;
  done: boolean;
  /** Dropped once settled, so a settled entry queued behind a hung one holds no closure. */
  expire: (() => void) | undefined;
}

/** A FIFO of operations that all got the same timeout, so their deadlines come in order. */
class DeadlineQueue {
  private items: Pending[] = [];
  private head = 0;

  get isEmpty(): boolean {
    return this.head === this.items.length;
  }

  push(item: Pending): void {
    this.items.push(item);
  }

  /** Live entries after the last compaction: the queue is compacted when it doubles past that. */
  private compactedTo = 0;

  /** Drops settled operations from the front and hands those whose deadline passed to `due`. */
  sweep(now: number, due: Pending[]): void {
    const items = this.items;
    while (this.head < items.length) {
      const item = items[this.head];
      if (!item.done) {
        if (item.at > now) break;
        due.push(item);
      }
      this.head++;
    }
    if (this.head === items.length) {
      this.items = [];
      this.head = 0;
      this.compactedTo = 0;
    } else if (items.length - this.head > 2 * this.compactedTo + 1024) {
      // A hung operation at the front keeps everything behind it queued until its deadline:
      // drop the settled ones now and then (amortised constant time per operation).
      this.items = items.slice(this.head).filter((item) => !item.done);
      this.head = 0;
      this.compactedTo = this.items.length;
    }
  }
}

/**
 * Bounds concurrent operations by timeouts with one interval timer instead of a `setTimeout`,
 * `clearTimeout` and `Promise.race` per operation: the store sits on every request, and a timer per
 * call cost more than the rest of the call's bookkeeping. Expiry is checked every `resolution` ms,
 * so an operation fails between its timeout and its timeout plus the resolution.
 */
export class Deadlines {
  private readonly queues = new Map<number, DeadlineQueue>();
  private timer: NodeJS.Timeout | undefined;
  private readonly resolution: number;

  /** `typicalTimeoutMs` sets the resolution: a tenth of it, between 5 and 50 ms. */
  constructor(typicalTimeoutMs: number) {
    this.resolution = Math.max(5, Math.min(50, Math.floor(typicalTimeoutMs / 10)));
  }

  /**
   * `operation`, or a rejection with `timeoutError()` when it has not settled within `timeoutMs`
   * (0: unbounded). The operation itself is not cancelled.
   */
  bound<T>(operation: Promise<T>, timeoutMs: number, timeoutError: () => Error): Promise<T> {
    if (timeoutMs <= 0) return operation;
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = {
        at: performance.now() + timeoutMs,
        done: false,
        expire: () => reject(timeoutError()),
      };
      this.queueFor(timeoutMs).push(pending);
      this.timer ??= setInterval(() => this.sweep(), this.resolution).unref();
      operation.then(
        (value) => {
          if (pending.done) return;
          pending.done = true;
          pending.expire = undefined;
          resolve(value);
        },
        (error: unknown) => {
          if (pending.done) return;
          pending.done = true;
          pending.expire = undefined;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  private queueFor(timeoutMs: number): DeadlineQueue {
    let queue = this.queues.get(timeoutMs);
    if (!queue) {
      queue = new DeadlineQueue();
      this.queues.set(timeoutMs, queue);
    }
    return queue;
  }

  private sweep(): void {
    const now = performance.now();
    let idle = true;
    const due: Pending[] = [];
    for (const [timeout, queue] of this.queues) {
      queue.sweep(now, due);
      if (queue.isEmpty) this.queues.delete(timeout);
      else idle = false;
    }
    // Expired after this turn's I/O: a busy event loop runs this timer late, when replies that came in time
    // may be waiting unread in their sockets. Timers run before the poll phase and immediates after it, so
    // those replies settle their operations first, and only what is still pending fails (a store under no
    // load at all looked down when the app's own loop was saturated, e.g. by a burst of socket handshakes).
    if (due.length > 0) setImmediate(expireAll, due);
    if (idle && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** Fails the operations in `due` that are still pending. */
function expireAll(due: readonly Pending[]): void {
  for (const item of due) {
    if (item.done) continue;
    item.done = true;
    const expire = item.expire;
    item.expire = undefined;
    expire?.();
  }
}
