import { hkdfSync, randomBytes } from 'node:crypto';
import { KeyRingConfigurationError } from '../errors/configuration.errors.js';
import { estimateEntropyBits, MIN_SECRET_BYTES } from './secret-strength.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** What a derived key is used for; keys of one purpose never verify or decrypt data of another. */
export type ProtectionPurpose = 'session-cookie' | 'temp-data-cookie';

const HKDF_SALT = Buffer.from('nest-session-state/v1', 'utf8');

/** One secret's derived key for one purpose. `index` 0 is the newest secret. */
export interface DerivedKey {
  readonly index: number;
  readonly key: Buffer;
}

/**
 * The key ring: the configured secrets, newest first, and the keys derived from them per purpose
 * (HKDF-SHA256). Data is protected with the newest secret and accepted under any of them, which is
 * how secrets rotate without logging everybody out.
 */
@HiddenFromLogs()
export class KeyRing {
  private readonly derived = new Map<ProtectionPurpose, readonly DerivedKey[]>();

  private constructor(
    private readonly secrets: readonly Buffer[],
    /** True when the ring was generated at startup: it dies with the process and is not shared. */
    readonly isEphemeral: boolean,
  ) {}

  /**
   * Builds a ring from configured secrets (newest first). Each must hold at least 32 bytes and look
   * random; otherwise startup fails with an error naming `optionName`.
   */
  static fromSecrets(secrets: readonly (string | Uint8Array)[], optionName = 'secrets'): KeyRing {
    if (typeof secrets === 'string') {
      // Read from the environment as one string; its content is a secret, never quoted.
      throw new KeyRingConfigurationError(
        `${optionName} must be an array of secrets (newest first), got one string: pass [secret], or split a ` +
          "list read from the environment: process.env.SESSION_SECRETS.split(',').map((s) => s.trim()).",
      );
    }
    if (!Array.isArray(secrets) || secrets.length === 0) {
      throw new KeyRingConfigurationError(
        `${optionName} must be a non-empty array of secrets (newest first). ` +
          `Generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`,
      );
    }
    const buffers = secrets.map((secret, index) => {
      if (typeof secret !== 'string' && !(secret instanceof Uint8Array)) {
        throw new KeyRingConfigurationError(`${optionName}[${index}] must be a string or a Uint8Array.`);
      }
      if (typeof secret === 'string' && secret.trim() !== secret) {
        // A list split on ',' without trimming ("new, old"): the old secret would be " old", and every cookie under
        // it rejected at the rotation. Generated secrets hold no whitespace; the secret itself is never quoted.
        throw new KeyRingConfigurationError(
          `${optionName}[${index}] starts or ends with whitespace: trim each secret of a list read from the ` +
            "environment (process.env.SESSION_SECRETS.split(',').map((s) => s.trim())). A secret that really holds " +
            'it is passed as bytes: Buffer.from(secret).',
        );
      }
      const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
      const entropy = estimateEntropyBits(bytes);
      if (bytes.length < MIN_SECRET_BYTES || entropy < 128) {
        // Long enough but repetitive (a word repeated, one letter) reads as "too short" otherwise.
        const why =
          bytes.length < MIN_SECRET_BYTES
            ? `got ${bytes.length} bytes`
            : `got ${bytes.length} bytes, but they do not look random: about ${Math.floor(entropy)} bits of entropy, 128 needed`;
        throw new KeyRingConfigurationError(
          `${optionName}[${index}] is too weak: a secret needs at least ${MIN_SECRET_BYTES} random bytes ` +
            `(${why}). Generate one with: ` +
            `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))". ` +
            'A new secret signs users out: to move off one an earlier version accepted without that, see ' +
            'SECURITY.md, "Moving off a weak secret".',
        );
      }
      return bytes;
    });
    return new KeyRing(buffers, false);
  }

  /** A ring with one fresh 256-bit secret from the CSPRNG; sessions will not survive a restart. */
  static ephemeral(): KeyRing {
    return new KeyRing([randomBytes(32)], true);
  }

  /** Number of secrets in the ring. */
  get size(): number {
    return this.secrets.length;
  }

  /** The keys for `purpose`, newest first (derived once, then cached). */
  keysFor(purpose: ProtectionPurpose): readonly DerivedKey[] {
    let keys = this.derived.get(purpose);
    if (!keys) {
      keys = this.secrets.map((secret, index) => ({
        index,
        key: Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, `nest-session-state:${purpose}`, 32)),
      }));
      this.derived.set(purpose, keys);
    }
    return keys;
  }
}
