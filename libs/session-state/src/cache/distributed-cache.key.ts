import { isUint8Array } from 'node:util/types';
import { isWellFormedText } from '../session/well-formed-text.js';

/**
 * Throws a TypeError for a key that a cache could not keep apart from others: not a string, or text with a
 * lone UTF-16 surrogate (Redis stores it as U+FFFD, so two such keys would meet in one entry). Every cache
 * refuses the same keys, so an app that moves from memory to Redis meets no new behaviour.
 */
export function assertCacheKey(key: string): void {
  if (typeof key !== 'string') {
    throw new TypeError(`DistributedCache key must be a string (got ${typeof key}).`);
  }
  if (!isWellFormedText(key)) {
    throw new TypeError(
      'DistributedCache key has a lone UTF-16 surrogate, which Redis cannot store as it is (two such keys would ' +
        'meet in one entry). Use well-formed text: encode the key (e.g. as hex or base64url) or apply toWellFormed().',
    );
  }
}

/**
 * Throws a TypeError for a value that is not bytes (a string or an object from untyped code): the memory cache
 * would store it as zeros without a word, and Redis would report the caller's mistake as an outage.
 */
export function assertCacheValue(value: Uint8Array): void {
  // Not instanceof: a Uint8Array (or Buffer) made in another realm (a vm context) is bytes too.
  if (!isUint8Array(value)) {
    throw new TypeError(
      `DistributedCache value must be a Uint8Array (got ${value === null ? 'null' : typeof value}). ` +
        'Store text with setCacheString(cache, key, text).',
    );
  }
}
