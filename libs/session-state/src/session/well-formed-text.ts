/** `String.prototype.isWellFormed` (ES2024, Node >= 20), typed here: the library compiles against ES2022. */
const { isWellFormed } = String.prototype as unknown as { isWellFormed(this: string): boolean };

/**
 * True when `text` has no lone UTF-16 surrogate. Redis and PostgreSQL text are UTF-8, which cannot hold
 * one (it arrives as U+FFFD, so two keys would meet), and PostgreSQL's jsonb refuses its escape.
 */
export function isWellFormedText(text: string): boolean {
  return isWellFormed.call(text);
}

const { toWellFormed } = String.prototype as unknown as { toWellFormed(this: string): string };

/** `text` with each lone UTF-16 surrogate replaced by U+FFFD, as a UTF-8 encoder would store it. */
export function toWellFormedText(text: string): string {
  return toWellFormed.call(text);
}
