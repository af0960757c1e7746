import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DerivedKey, KeyRing, ProtectionPurpose } from './key-ring.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** A value recovered from a protected string, and whether it was protected by an older secret. */
export interface Unprotected<T> {
  readonly value: T;
  /** True when an older secret verified it: re-protect with the newest and send it again. */
  readonly rotated: boolean;
}

const TAG_BYTES = 32;
/** Verified cookies remembered per signer, so a returning visitor costs a Map lookup, not an HMAC. */
const VERIFIED_CACHE_LIMIT = 10_000;
const TAG_CHARS = 43; // base64url of 32 bytes, unpadded
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Signs cookie-safe ASCII values with HMAC-SHA256 under one purpose of the key ring:
 * `<value>.<base64url tag>`. Verification is constant-time and tries every secret, newest first.
 */
@HiddenFromLogs()
export class CookieSigner {
  private readonly keys: readonly DerivedKey[];
  // Only strings that passed full verification enter this map, so a hit proves what a check would.
  private readonly verified = new Map<string, Unprotected<string>>();

  constructor(
    ring: KeyRing,
    purpose: ProtectionPurpose,
    /** Longest signed string accepted; longer input is rejected before any hashing. */
    private readonly maxLength = 256,
  ) {
    this.keys = ring.keysFor(purpose);
  }

  /** `value` must be base64url (the session key is); the result is cookie-safe. */
  sign(value: string): string {
    return `${value}.${this.tag(this.keys[0].key, value).toString('base64url')}`;
  }

  /** The signed value, or undefined when `signed` is malformed or no secret of the ring signed it. */
  verify(signed: string): Unprotected<string> | undefined {
    const known = this.verified.get(signed);
    if (known) return known;
    const result = this.check(signed);
    if (result) {
      if (this.verified.size >= VERIFIED_CACHE_LIMIT) this.verified.clear();
      this.verified.set(signed, result);
    }
    return result;
  }

  /**
   * Whether `signed` has the shape of a signed value (length, `.`, base64url, a canonical tag): only such a string
   * costs {@link verify} an HMAC per secret; any other is refused for the price of a few string checks.
   */
  isWellFormed(signed: string): boolean {
    return this.parts(signed) !== undefined;
  }

  private parts(signed: string): { value: string; given: Buffer } | undefined {
    if (signed.length > this.maxLength || signed.length < TAG_CHARS + 2) return undefined;
    const dot = signed.length - TAG_CHARS - 1;
    if (signed.charCodeAt(dot) !== 0x2e /* . */) return undefined;
    const value = signed.slice(0, dot);
    const tagText = signed.slice(dot + 1);
    if (!BASE64URL.test(value) || !BASE64URL.test(tagText)) return undefined;
    const given = Buffer.from(tagText, 'base64url');
    // Canonical encoding only: a decoder ignores the low bits of the last character, so without this
    // check a tag with those bits changed would verify, and a flipped bit would go unnoticed.
    if (given.length !== TAG_BYTES || given.toString('base64url') !== tagText) return undefined;
    return { value, given };
  }

  private check(signed: string): Unprotected<string> | undefined {
    const parts = this.parts(signed);
    if (!parts) return undefined;
    const { value, given } = parts;
    for (const { index, key } of this.keys) {
      if (timingSafeEqual(this.tag(key, value), given)) return { value, rotated: index > 0 };
    }
    return undefined;
  }

  private tag(key: Buffer, value: string): Buffer {
    return createHmac('sha256', key).update(value, 'latin1').digest();
  }
}
