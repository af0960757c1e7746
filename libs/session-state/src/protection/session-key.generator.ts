import { randomBase64url } from './random-pool.js';

/** Bytes of CSPRNG output in a session key (192 bits; the design asks for at least 128). */
export const SESSION_KEY_BYTES = 24;
/** Length of a session key as base64url text. */
export const SESSION_KEY_LENGTH = 32;

/** A new session key: 192 bits from the CSPRNG, base64url (cookie-safe, Redis-key-safe). */
export function generateSessionKey(): string {
  return randomBase64url(SESSION_KEY_BYTES);
}

/** A new session id (the value apps may log), independent of the key. */
export function generateSessionId(): string {
  return randomBase64url(16);
}
