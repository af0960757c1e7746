/**
 * Thrown at startup when the key ring's secrets are missing or too weak.
 *
 * @example
 * SessionModule.forRoot({ secrets: ['short'] });
 * // startup fails: KeyRingConfigurationError (each secret needs >= 32 bytes of entropy)
 */
export class KeyRingConfigurationError extends Error {
  override readonly name = 'KeyRingConfigurationError';
}
