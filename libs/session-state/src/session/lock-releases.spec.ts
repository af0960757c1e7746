import { LockReleases } from './lock-releases.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('LockReleases', () => {
  let releases: LockReleases;
  afterEach(() => releases.close());

  it('tries a failed release again until the store takes it, then stops', async () => {
    const calls: string[] = [];
    let failures = 2;
    releases = new LockReleases((key, token) => {
      calls.push(`${key}:${token}`);
      return failures-- > 0 ? Promise.reject(new Error('store unreachable')) : Promise.resolve();
    });
    releases.retry('k', 't', 10_000);
    await sleep(250 + 500 + 200); // the first retry, then the second after twice the wait
    expect(calls).toEqual(['k:t', 'k:t']);
    await sleep(1_000 + 200);
    expect(calls).toEqual(['k:t', 'k:t', 'k:t']); // the third succeeded: no fourth
    await sleep(2_000 + 200);
    expect(calls).toHaveLength(3);
  });

  it('an unlock that throws instead of rejecting is tried again, not an uncaught exception', async () => {
    let calls = 0;
    releases = new LockReleases(() => {
      calls++;
      if (calls < 2) throw new Error('thrown, not rejected');
      return Promise.resolve();
    });
    releases.retry('k', 't', 10_000);
    await sleep(250 + 500 + 200);
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

  it('gives up once the lock would have expired by itself', async () => {
    const store = unreachableStore();
    releases.retry('k', 't', 600); // 250 ms, then 500 ms more would pass 600 ms
    await sleep(1_500);
    expect(store.tries()).toBe(1);
  });

  it('stops at close', async () => {
    const store = unreachableStore();
    releases.retry('k', 't', 10_000);
    releases.close();
    await sleep(400);
    expect(store.tries()).toBe(0);
  });
});
