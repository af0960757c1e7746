import { describeOptionValue } from './option-names.check.js';

/**
 * An integer option from `min` to `max`, or `fallback` when it is not set. `fail` throws the store's
 * configuration error with the message, which names the option by `label` (e.g. `Redis option
 * databaseId`, `PostgreSQL option postgres.poolSize`).
 */
export function integerOption(
  fail: (message: string) => never,
  label: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${label} must be an integer from ${min} to ${max} (got ${describeOptionValue(value)}).`);
  }
  return value;
}
