/** Marks every error this library throws, its HTTP exceptions (which extend Nest's) included. */
const SESSION_STATE_ERROR = Symbol.for('nest-session-state.error');

/**
 * The base of every error nest-session-state throws. `name` is the class name; `code` is a stable
 * string to branch on (messages may change, codes do not). `instanceof SessionStateError` is also
 * true for the library's HTTP exceptions, which extend Nest's own exceptions (for example
 * {@link SessionStateUnavailableException}) and so cannot extend this class.
 *
 * To add an error: extend this class (or a Nest exception marked with {@link markSessionStateError})
 * in a file under `errors/`, give it a `code`, export it from `index.ts` and list it in docs/API.md.
 *
 * @example
 * try {
 *   await session.commit();
 * } catch (error) {
 *   if (error instanceof SessionStateError) logger.warn(`${error.code}: ${error.message}`);
 *   else throw error;
 * }
 */
export abstract class SessionStateError extends Error {
  /** A stable identifier of the situation, e.g. `SESSION_RESPONSE_STARTED`. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  /** True for this library's errors and HTTP exceptions; subclasses keep the ordinary `instanceof`. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== SessionStateError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && SESSION_STATE_ERROR in value;
  }
}

Object.defineProperty(SessionStateError.prototype, SESSION_STATE_ERROR, { value: true });

/**
 * Marks an error class that cannot extend {@link SessionStateError} (an HTTP exception extending a
 * Nest exception) as one of this library's errors, so `instanceof SessionStateError` finds it.
 */
export function markSessionStateError(errorClass: abstract new (...args: never[]) => Error): void {
  Object.defineProperty(errorClass.prototype, SESSION_STATE_ERROR, { value: true });
}
