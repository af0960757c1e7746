interface Waiting<I, R> {
  readonly item: I;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent operations of one kind into batches, one statement in flight at a time: an
 * operation that finds nothing in flight goes out at once, alone; those that arrive while a statement
 * runs wait for it and then go out together, as one statement. Under load each statement (and each
 * commit's WAL flush) then serves many requests; without load nothing waits.
 *
 * `send` answers a batch with one result per item, in order. `joins` says whether an item may go in a
 * batch with the ones already taken (one row may appear once in an upsert); an item that may not stays
 * queued, in order, for the next batch. `skip` drops an item whose caller stopped waiting (timed out)
 * before it was sent.
 */
export class StatementBatcher<I, R> {
  private queue: Waiting<I, R>[] = [];
  private busy = false;

  constructor(
    private readonly send: (items: readonly I[]) => Promise<readonly R[]>,
    private readonly maxBatch: number,
    private readonly joins: (taken: readonly I[], item: I) => boolean,
    private readonly skip: (item: I) => boolean,
  ) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.busy) this.flush();
    });
  }

  private flush(): void {
    const taken: Waiting<I, R>[] = [];
    const items: I[] = [];
    const rest: Waiting<I, R>[] = [];
    for (const waiting of this.queue) {
      if (this.skip(waiting.item)) continue;
      if (items.length < this.maxBatch && this.joins(items, waiting.item)) {
        taken.push(waiting);
        items.push(waiting.item);
      } else {
        rest.push(waiting);
      }
    }
    this.queue = rest;
    if (taken.length === 0) return;
    this.busy = true;
    // send is async: a throw arrives as a rejection.
    this.send(items).then(
      (results) => {
        for (let i = 0; i < taken.length; i++) taken[i].resolve(results[i]);
        this.next();
      },
      (error: unknown) => {
        for (const waiting of taken) waiting.reject(error);
        this.next();
      },
    );
  }

  private next(): void {
    this.busy = false;
    if (this.queue.length > 0) this.flush();
  }
}
