import { randomBytes } from 'node:crypto';

export const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A secret the key ring accepts: 32 random bytes, base64url. */
export const randomSecret = (): string => randomBytes(32).toString('base64url');

/** One damaged copy of a value, and how it was damaged (for failure messages). */
export interface Mutation {
  label: string;
  value: string;
}

/**
 * Every single-bit flip of every character of `value`:
 * - in the 6-bit value a base64url character stands for (the result is base64url again, so it gets past
 *   the alphabet check and reaches the HMAC or the GCM tag check; this includes the low bits of a final
 *   character that a lenient decoder ignores);
 * - in bits 5 and 6 of the character's ASCII code (flips of bits 0-4 mostly give another base64url character,
 *   covered above; these give separators such as `;` `,` `=` or space, other punctuation, and control
 *   characters).
 */
export function bitFlips(value: string): Mutation[] {
  const out: Mutation[] = [];
  for (let at = 0; at < value.length; at++) {
    const index = BASE64URL_ALPHABET.indexOf(value[at]);
    if (index !== -1) {
      for (let bit = 0; bit < 6; bit++) {
        out.push({
          label: `position ${at}, base64url bit ${bit}`,
          value: replaceAt(value, at, BASE64URL_ALPHABET[index ^ (1 << bit)]),
        });
      }
    }
    for (const bit of [5, 6]) {
      out.push({
        label: `position ${at}, ASCII bit ${bit}`,
        value: replaceAt(value, at, String.fromCharCode(value.charCodeAt(at) ^ (1 << bit))),
      });
    }
  }
  return out;
}

/** Every proper prefix of `value`, the empty one included. */
export function truncations(value: string): Mutation[] {
  return Array.from({ length: value.length }, (_, length) => ({
    label: `truncated to ${length} of ${value.length}`,
    value: value.slice(0, length),
  }));
}

export function replaceAt(value: string, at: number, text: string): string {
  return value.slice(0, at) + text + value.slice(at + 1);
}

/** True when `text` holds a character an HTTP header value cannot carry (a control character or DEL). */
export function hasControlCharacter(text: string): boolean {
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(text);
}
