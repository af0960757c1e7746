import { SessionNearCache } from './session-near-cache.js';
import type { SessionData } from './session-store.interface.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: SessionData | undefined, field: string) => {
  const value = data?.get(field);
  return value && new TextDecoder().decode(value);
};

const IDLE = 20 * 60_000;

describe('SessionNearCache', () => {
  let now: number;
  let near: SessionNearCache;

  beforeEach(() => {
    now = 1_000_000;
    near = new SessionNearCache(3, 5000, 60_000, () => now);
    near.activate();
  });

  const load = (key: string, data: Record<string, string> | undefined) =>
    near.loaded(key, near.begin(key), data && new Map(Object.entries(data).map(([k, v]) => [k, bytes(v)])));

  it('serves copies of what was loaded; changing a copy does not change what is held', () => {
    load('k', { a: '1' });
    const copy = near.get('k', IDLE)!;
    expect(text(copy, 'a')).toBe('1');
    copy.set('a', bytes('changed'));
    copy.delete('a');
    expect(text(near.get('k', IDLE), 'a')).toBe('1');
  });

  it('remembers that Redis had no session (an empty map)', () => {
    load('k', undefined);
    expect(near.get('k', IDLE)).toEqual(new Map());
  });

  it('drops a copy on invalidation, and does not keep a load that an invalidation raced', () => {
    load('k', { a: '1' });
    near.invalidate('k');
    expect(near.get('k', IDLE)).toBeUndefined();

    const loading = near.begin('k');
    near.invalidate('k'); // another instance wrote while the load was in flight
    near.loaded('k', loading, new Map([['a', bytes('old')]]));
    expect(near.get('k', IDLE)).toBeUndefined();

    // Once nothing is in flight, the race is forgotten: the next load is kept.
    load('k', { a: '2' });
    expect(text(near.get('k', IDLE), 'a')).toBe('2');
  });

  it('a race on one of two overlapping operations spoils both', () => {
    const first = near.begin('k');
    const second = near.begin('k');
    near.invalidate('k');
    near.loaded('k', first, new Map());
    near.loaded('k', second, new Map());
    expect(near.get('k', IDLE)).toBeUndefined();
  });

  it('a flush, or losing the invalidation channel, drops everything and spoils operations in flight', () => {
    load('a', { x: '1' });
    const inFlight = near.begin('b');
    near.flush();
    expect(near.get('a', IDLE)).toBeUndefined();
    near.loaded('b', inFlight, new Map());
    expect(near.get('b', IDLE)).toBeUndefined();

    load('a', { x: '1' });
    const beforeLoss = near.begin('c');
    near.deactivate();
    expect(near.isActive).toBe(false);
    expect(near.get('a', IDLE)).toBeUndefined();
    // While off nothing is kept, even operations started while off.
    load('d', { x: '1' });
    near.activate();
    near.loaded('c', beforeLoss, new Map());
    expect(near.get('c', IDLE)).toBeUndefined();
    expect(near.get('d', IDLE)).toBeUndefined();
    expect(near.size).toBe(0);
  });

  it('an operation whose result is not kept (failed, timed out, or a write: a commit or slide) drops the copy', () => {
    load('k', { a: '1' });
    near.drop('k', near.begin('k'));
    expect(near.get('k', IDLE)).toBeUndefined();
    // A load that was in flight beside it and finished first was not kept either.
    load('k', { a: '1' });
    const loading = near.begin('k');
    const writing = near.begin('k');
    near.loaded('k', loading, new Map([['a', bytes('1')]]));
    near.drop('k', writing);
    expect(near.get('k', IDLE)).toBeUndefined();
  });

  it('trusts a copy at most maxAge after it was read from Redis', () => {
    load('k', { a: '1' });
    now += 4999;
    expect(near.get('k', IDLE)).toBeDefined();
    now += 1;
    expect(near.get('k', IDLE)).toBeUndefined();
  });

  it('sends the read to Redis when the idle timeout is due for a slide', () => {
    near = new SessionNearCache(3, 3_600_000, 60_000, () => now);
    near.activate();
    load('k', { a: '1' });
    now += 59_999;
    expect(near.get('k', IDLE)).toBeDefined();
    now += 1;
    expect(near.get('k', IDLE)).toBeUndefined();
    // A load that skipped the slide (slid 50 s ago by another instance) is due 10 s later.
    near.loaded('k', near.begin('k'), new Map(), 50_000);
    now += 9_000;
    expect(near.get('k', IDLE)).toBeDefined();
    now += 1_000;
    expect(near.get('k', IDLE)).toBeUndefined();
    // A shorter idle timeout bounds it too.
    load('k', { a: '1' });
    now += 10_000;
    expect(near.get('k', 10_000)).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the least recently loaded', () => {
    load('a', {});
    load('b', {});
    load('c', {});
    load('a', {}); // reloaded: now the newest
    load('d', {});
    expect(near.size).toBe(3);
    expect(near.get('b', IDLE)).toBeUndefined();
    for (const key of ['a', 'c', 'd']) expect(near.get(key, IDLE)).toBeDefined();
  });

  it('is off until activated', () => {
    const off = new SessionNearCache(3, 5000, 60_000, () => now);
    off.loaded('k', off.begin('k'), new Map());
    expect(off.get('k', IDLE)).toBeUndefined();
    expect(off.size).toBe(0);
  });

  describe('getConfirmed (the invalidation barrier)', () => {
    it('serves the copy only if it is still held once the barrier has let earlier invalidations in', async () => {
      load('k', { a: '1' });
      let arriving: string | undefined = 'k'; // an invalidation already sent, not yet applied
      near.useBarrier(() => {
        if (arriving) near.invalidate(arriving);
        arriving = undefined;
        return Promise.resolve(true);
      });
      expect(near.get('k', IDLE)).toBeDefined(); // without the barrier: the stale copy
      expect(await near.getConfirmed('k', IDLE)).toBeUndefined();
      load('k', { a: '2' });
      expect(text(await near.getConfirmed('k', IDLE), 'a')).toBe('2');
    });

    it('reads Redis (undefined) when the barrier fails, and does not wait for one when nothing is held', async () => {
      let barriers = 0;
      near.useBarrier(() => {
        barriers++;
        return Promise.resolve(false);
      });
      expect(await near.getConfirmed('none', IDLE)).toBeUndefined();
      expect(barriers).toBe(0);
      load('k', { a: '1' });
      expect(await near.getConfirmed('k', IDLE)).toBeUndefined();
      expect(barriers).toBe(1);
    });
  });
});
