/** Thrown at startup when the key ring's secrets are missing or too weak. */
export class KeyRingConfigurationError extends Error {
  override readonly name = 'KeyRingConfigurationError';
}
