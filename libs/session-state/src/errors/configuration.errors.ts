import { SessionStateError } from './session-state.error.js';

/**
 * Thrown at startup for module options that cannot work; the message names the option.
 *
 * @example
 * SessionModule.forRoot({ session: { idleTimeout: -1 } });
 * // startup fails: SessionConfigurationError naming session.idleTimeout
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
