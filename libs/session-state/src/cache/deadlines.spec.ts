import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Deadlines } from './deadlines.js';

const never = <T>() => new Promise<T>(() => undefined);
const timedOut = () => new Error('timed out');

describe('Deadlines', () => {
  it('passes values and rejections through; wraps non-Error rejections', async () => {
    const deadlines = new Deadlines(1000);
    await expect(deadlines.bound(Promise.resolve(42), 1000, timedOut)).resolves.toBe(42);
    await expect(deadlines.bound(Promise.reject(new Error('boom')), 1000, timedOut)).rejects.toThrow('boom');
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a store may reject with anything
    await expect(deadlines.bound(Promise.reject('text'), 1000, timedOut)).rejects.toThrow('text');
  });

  it('rejects with the timeout error between the timeout and the timeout plus the resolution', async () => {
    const deadlines = new Deadlines(200); // resolution 20 ms
    const started = performance.now();
    await expect(deadlines.bound(never(), 200, timedOut)).rejects.toThrow('timed out');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(199);
    expect(elapsed).toBeLessThan(200 + 20 + 150); // resolution plus scheduling slack on a busy machine
  });

  it('a reply that came in time but waits unread while the event loop is blocked past the deadline settles the operation', async () => {
    // `cat` answers from its own process while this one is blocked, as a store does while the app's loop is busy.
    const echo = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      echo.stdout.resume(); // flowing before the reply: nothing of it is read until the loop runs again
      await once(echo, 'spawn');
      const deadlines = new Deadlines(50); // resolution 5 ms
      const reply = once(echo.stdout, 'data').then(([chunk]) => String(chunk));
      const bounded = deadlines.bound(reply, 50, timedOut);
      // Sent and then blocked past the deadline in the check phase, so the loop's next phase is the timers' (the
      // late sweep), before the poll that reads the reply, which landed in the pipe meanwhile.
      setImmediate(() => {
        echo.stdin.write('pong');
        const blockedUntil = performance.now() + 200;
        while (performance.now() < blockedUntil);
      });
      await expect(bounded).resolves.toBe('pong');
    } finally {
      echo.kill();
    }
  });

  it('a timeout of 0 leaves the operation unbounded (the same promise)', () => {
    const deadlines = new Deadlines(100);
    const operation = never<number>();
    expect(deadlines.bound(operation, 0, timedOut)).toBe(operation);
  });

  it('operations with different timeouts each expire on their own deadline', async () => {
    const deadlines = new Deadlines(100);
    const order: string[] = [];
    const long = deadlines
      .bound(never(), 300, () => new Error('long'))
      .catch((e: Error) => order.push(e.message));
    const short = deadlines
      .bound(never(), 100, () => new Error('short'))
      .catch((e: Error) => order.push(e.message));
    await Promise.all([long, short]);
    expect(order).toEqual(['short', 'long']);
  });

  it('stops its timer when nothing is pending, and starts it again when needed', async () => {
    const deadlines = new Deadlines(50);
    await deadlines.bound(Promise.resolve(1), 50, timedOut);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect((deadlines as unknown as { timer: unknown }).timer).toBeUndefined();
    await expect(deadlines.bound(never(), 50, timedOut)).rejects.toThrow('timed out');
  });

  it('settled operations queued behind a hung one are dropped long before its deadline', async () => {
    const deadlines = new Deadlines(100); // resolution 10 ms
    void deadlines.bound(never(), 60_000, timedOut).catch(() => undefined);
    for (let i = 0; i < 20_000; i++) await deadlines.bound(Promise.resolve(i), 60_000, timedOut);
    await new Promise((resolve) => setTimeout(resolve, 40));
    const queues = (deadlines as unknown as { queues: Map<number, { items: unknown[]; head: number }> })
      .queues;
    const queue = queues.get(60_000)!;
    expect(queue.items.length - queue.head).toBeLessThan(5_000);
  });
});
