import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { Unprotected } from './cookie-signer.js';
import type { DerivedKey, KeyRing, ProtectionPurpose } from './key-ring.js';
import { randomBuffer } from './random-pool.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES;

/**
 * AES-256-GCM under one purpose of the key ring, as base64url text:
 * `version(1) | iv(12) | ciphertext | tag(16)`, with the purpose as additional authenticated data.
 * Encrypts with the newest secret; decrypts with any, newest first.
 */
@HiddenFromLogs()
export class AuthenticatedEncryptor {
  private readonly keys: readonly DerivedKey[];
  private readonly aad: Buffer;

  constructor(ring: KeyRing, purpose: ProtectionPurpose) {
    this.keys = ring.keysFor(purpose);
    this.aad = Buffer.from(purpose, 'utf8');
  }

  /** The length of {@link encrypt}'s text for a plaintext of `plaintextBytes` bytes. */
  static protectedLength(plaintextBytes: number): number {
    const bytes = HEADER_BYTES + plaintextBytes + TAG_BYTES;
    return Math.floor(bytes / 3) * 4 + (bytes % 3 === 0 ? 0 : (bytes % 3) + 1);
  }

  encrypt(plaintext: Uint8Array): string {
    const iv = randomBuffer(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys[0].key, iv);
    cipher.setAAD(this.aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The plaintext, or undefined for anything that is not a value this ring encrypted. */
  decrypt(text: string): Unprotected<Buffer> | undefined {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
    const bytes = Buffer.from(text, 'base64url');
    if (bytes.length < HEADER_BYTES + TAG_BYTES || bytes[0] !== VERSION) return undefined;
    // Canonical encoding only: a decoder ignores the unused low bits of the last character and a
    // dangling sixth character, so other texts would decode to the same bytes and be accepted.
    if (bytes.toString('base64url') !== text) return undefined;
    const iv = bytes.subarray(1, HEADER_BYTES);
    const body = bytes.subarray(HEADER_BYTES, bytes.length - TAG_BYTES);
    const tag = bytes.subarray(bytes.length - TAG_BYTES);
    for (const { index, key } of this.keys) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(this.aad);
        decipher.setAuthTag(tag);
        const value = Buffer.concat([decipher.update(body), decipher.final()]);
        return { value, rotated: index > 0 };
      } catch {
        // Wrong key or tampered data: GCM's tag check failed; try the next secret.
      }
    }
    return undefined;
  }
}
