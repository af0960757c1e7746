import { randomBytes } from 'node:crypto';

/** Bytes of CSPRNG output in a session key (192 bits; the design asks for at least 128). */
export const SESSION_KEY_BYTES = 24;
/** Length of a session key as base64url text. */
export const SESSION_KEY_LENGTH = 32;

/** A new session key: 192 bits from the CSPRNG, base64url (cookie-safe, Redis-key-safe). */
export function generateSessionKey(): string {
  return randomBytes(SESSION_KEY_BYTES).toString('base64url');
}

/** A new session id (the value apps may log), independent of the key. */
export function generateSessionId(): string {
  return randomBytes(16).toString('base64url');
}
