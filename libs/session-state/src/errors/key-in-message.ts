/** Keys longer than this are shortened in error messages (and the 413 bodies that carry them). */
const LONGEST_KEY_SHOWN = 100;

/**
 * `key` as an error message names it: whole when short, else its start and its length, so a key built from
 * client input cannot make a 413's body (or a log line) as large as the key.
 *
 * @example keyInMessage('x'.repeat(300_000)); // 'xxx…xxx… (300000 characters)'
 */
export function keyInMessage(key: string): string {
  if (key.length <= LONGEST_KEY_SHOWN) return key;
  return `${key.slice(0, LONGEST_KEY_SHOWN - 20)}… (${key.length} characters)`;
}
