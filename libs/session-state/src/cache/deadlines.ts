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

  /** Drops settled operations from the front and expires those whose deadline passed. */
  sweep(now: number): void {
    const items = this.items;
    while (this.head < items.length) {
      const item = items[this.head];
      if (!item.done) {
        if (item.at > now) break;
        item.done = true;
        const expire = item.expire;
        item.expire = undefined;
        expire?.();
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
    for (const [timeout, queue] of this.queues) {
      queue.sweep(now);
      if (queue.isEmpty) this.queues.delete(timeout);
      else idle = false;
    }
    if (idle && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
