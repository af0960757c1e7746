import { SessionStateError } from './session-state.error.js';

/**
 * Thrown at startup for module options that cannot work; the message names the option. Also by
 * `session.get(key, Class)` when class-transformer, an optional peer, is not installed. An unknown
 * name fails too, with the name it most likely meant, and so do store options that exclude each other.
 *
 * @example
 * SessionModule.forRoot({ session: { idleTimeout: -1 } });
 * // startup fails: SessionConfigurationError naming session.idleTimeout
 * SessionModule.forRoot(JSON.parse('{ "session": { "idleTimeOut": 60000 } }'));
 * // SessionModule option session.idleTimeOut is unknown: did you mean session.idleTimeout?
 */
export class SessionConfigurationError extends SessionStateError {
  readonly code = 'SESSION_CONFIGURATION';
}

/**
 * Thrown at startup when the key ring's secrets are missing or too weak.
 *
 * @example
 * SessionModule.forRoot({ secrets: ['short'] });
 * // startup fails: KeyRingConfigurationError (each secret needs >= 32 bytes of entropy)
 */
export class KeyRingConfigurationError extends SessionStateError {
  readonly code = 'KEY_RING_CONFIGURATION';
}
