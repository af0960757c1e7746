import { jest } from '@jest/globals';
import { LockReleases } from './lock-releases.js';

/** Lets `ms` pass on the fake clock, running the timers and the promises they start. */
const pass = (ms: number) => jest.advanceTimersByTimeAsync(ms);

describe('LockReleases (on a fake clock: the back-off is checked exactly, whatever the machine load)', () => {
  let releases: LockReleases;
  beforeEach(() => jest.useFakeTimers());
  afterEach(async () => {
    await releases.close();
    jest.useRealTimers();
  });

  it('tries a failed release again until the store takes it, then stops: 250 ms, then twice the wait each time', async () => {
    const calls: number[] = [];
    const start = Date.now();
    let failures = 2;
    releases = new LockReleases(() => {
      calls.push(Date.now() - start);
      return failures-- > 0 ? Promise.reject(new Error('store unreachable')) : Promise.resolve();
    });
    releases.retry('k', 't', 10_000);
    await pass(249);
    expect(calls).toEqual([]);
    await pass(1 + 500 + 1_000);
    expect(calls).toEqual([250, 750, 1_750]); // the third succeeded
    await pass(10_000);
    expect(calls).toHaveLength(3); // no fourth
  });

  it('passes the key and token of the release it retries', async () => {
    const seen: string[] = [];
    releases = new LockReleases((key, token) => {
      seen.push(`${key}:${token}`);
      return Promise.resolve();
    });
    releases.retry('k', 't', 10_000);
    await pass(250);
    expect(seen).toEqual(['k:t']);
  });

  it('an unlock that throws instead of rejecting is tried again, not an uncaught exception', async () => {
    let calls = 0;
    releases = new LockReleases(() => {
      calls++;
      if (calls < 2) throw new Error('thrown, not rejected');
      return Promise.resolve();
    });
    releases.retry('k', 't', 10_000);
    await pass(250 + 500);
    expect(calls).toBe(2);
  });

  /** Releases that never reach the store; `tries()` counts them. */
  function unreachableStore(): { tries(): number } {
    let calls = 0;
    releases = new LockReleases(() => {
      calls++;
      return Promise.reject(new Error('store unreachable'));
    });
    return { tries: () => calls };
  }

  it('waits at most 2 s between tries', async () => {
    const store = unreachableStore();
    releases.retry('k', 't', 60_000);
    await pass(250 + 500 + 1_000 + 2_000 + 2_000 + 2_000);
    expect(store.tries()).toBe(6);
  });

  it('gives up once the lock would have expired by itself', async () => {
    const store = unreachableStore();
    releases.retry('k', 't', 600); // 250 ms, then 500 ms more would pass 600 ms
    await pass(5_000);
    expect(store.tries()).toBe(1);
  });

  it('says whether a release will be tried again: not after close, not past the bound, not for a lock about to expire', async () => {
    unreachableStore();
    expect(releases.retry('k', 't', 10_000)).toBe(true);
    expect(releases.retry('k', 'short', 200)).toBe(false); // expires before the first retry
    await releases.close();
    expect(releases.retry('k', 'late', 10_000)).toBe(false);
  });

  it('at close, stops the retries after one last try of each', async () => {
    const store = unreachableStore();
    releases.retry('k', 't', 10_000);
    await releases.close();
    expect(store.tries()).toBe(1);
    await pass(5_000);
    expect(store.tries()).toBe(1);
  });

  it('keeps at most 10,000 held locks to release at close, dropping the oldest (most likely expired) first', async () => {
    const released: string[] = [];
    releases = new LockReleases((_key, token) => {
      released.push(token);
      return Promise.resolve();
    });
    for (let i = 0; i <= 10_000; i++) releases.taken('k', `t${i}`);
    await releases.close();
    expect(released).toHaveLength(10_000);
    expect(released[0]).toBe('t1');
    expect(released.at(-1)).toBe('t10000');
  });

  it('at close, releases the locks requests still hold (a request whose client left: Nest does not wait for it)', async () => {
    const released: string[] = [];
    releases = new LockReleases((key, token) => {
      released.push(`${key}:${token}`);
      return Promise.resolve();
    });
    releases.taken('a', 't1');
    releases.taken('b', 't2');
    releases.released('t1'); // its request ended and released it
    await releases.close();
    expect(released).toEqual(['b:t2']);
  });

  it('at close, waits for a lock try on its way and then releases it: after the try, so it frees what the try took', async () => {
    const events: string[] = [];
    releases = new LockReleases((key, token) => {
      events.push(`release ${key}:${token}`);
      return Promise.resolve();
    });
    let answer!: (taken: boolean) => void;
    releases.trying('k', 't', new Promise<boolean>((resolve) => (answer = resolve)));
    const closing = releases.close();
    await pass(100);
    expect(events).toEqual([]); // not before the try reached the store
    events.push('try answered');
    answer(true);
    await closing;
    expect(events).toEqual(['try answered', 'release k:t']);
  });

  it('drops a try that took nothing or failed: close releases neither (the request releases a failed one itself)', async () => {
    const released: string[] = [];
    releases = new LockReleases((_key, token) => {
      released.push(token);
      return Promise.resolve();
    });
    releases.trying('k', 'held-elsewhere', Promise.resolve(false));
    releases.trying('k', 'failed', Promise.reject(new Error('store unreachable')));
    releases.trying('k', 'took', Promise.resolve(true));
    await pass(0);
    await releases.close();
    expect(released).toEqual(['took']);
  });

  it('at close, waits for a try on its way no longer than its bound (a store that never answers)', async () => {
    const released: string[] = [];
    releases = new LockReleases((_key, token) => {
      released.push(token);
      return Promise.resolve();
    }, 1_000);
    releases.trying('k', 'stalled', new Promise<boolean>(() => undefined));
    let closed = false;
    void releases.close().then(() => (closed = true));
    await pass(999);
    expect(closed).toBe(false);
    await pass(1);
    expect(closed).toBe(true);
    expect(released).toEqual(['stalled']); // it may take the lock yet: released all the same (fenced)
  });
});
