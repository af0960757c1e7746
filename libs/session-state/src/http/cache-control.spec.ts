import { uncachedCacheControl } from './cache-control.js';

describe('uncachedCacheControl', () => {
  it('is no-cache, no-store when the app set nothing', () => {
    expect(uncachedCacheControl(undefined)).toBe('no-cache, no-store');
  });

  it("keeps the app's other directives (no-transform keeps compression off an event stream)", () => {
    expect(
      uncachedCacheControl('private, no-cache, no-store, must-revalidate, max-age=0, no-transform'),
    ).toBe('private, no-cache, no-store, must-revalidate, no-transform');
    expect(uncachedCacheControl(['no-transform', 'private'])).toBe(
      'no-transform, private, no-cache, no-store',
    );
  });

  it('keeps a quoted value whole, commas included', () => {
    expect(uncachedCacheControl('private="Set-Cookie, Authorization", max-age=60')).toBe(
      'private="Set-Cookie, Authorization", no-cache, no-store',
    );
  });

  it('drops what lets a cache keep or share the response, in any letter case, and repeats nothing', () => {
    expect(uncachedCacheControl('Public, MAX-AGE=3600, s-maxage=60, immutable, stale-if-error=5')).toBe(
      'no-cache, no-store',
    );
    expect(uncachedCacheControl('no-store, No-Store,, stale-while-revalidate=1')).toBe('no-store, no-cache');
  });
});
