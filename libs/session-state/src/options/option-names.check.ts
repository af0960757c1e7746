import { quoteRedacted } from './redact-credentials.js';
import { closestOptionName, type OptionNameCandidates } from './option-name.suggestion.js';

/**
 * Every option name of `T`, each `true`. Given to {@link optionNames}, the literal fails to compile when
 * an option of `T` is missing from it or it holds a name `T` does not have, so adding an option to an
 * interface without teaching the startup check its name is a compile error.
 */
export type OptionNameSet<T> = { readonly [K in keyof T]-?: true };

/** The names of an options interface, in declaration order, checked complete by the compiler. */
export function optionNames<T>(set: OptionNameSet<T>): readonly (keyof T & string)[] {
  return Object.keys(set) as (keyof T & string)[];
}

/** One options object to check: where it sits and which names it may hold. */
export interface OptionLevel extends OptionNameCandidates {
  /** Its path from the root of the options, e.g. `session.cookie`; '' for the root. */
  readonly path: string;
  /**
   * Objects where a name unknown here belongs when it matches one of theirs exactly, e.g. `idleTimeout`
   * at the top → `session.idleTimeout`.
   */
  readonly elsewhere?: readonly { readonly path: string; readonly names: readonly string[] }[];
  /**
   * Names valid beside this object but not in it (the module's `isGlobal`, which `forRoot()` takes out before the
   * check), each with where it goes: suggested for a typo, explained when found here.
   */
  readonly besides?: Readonly<Record<string, string>>;
  /**
   * What to know before following the suggestion for an unknown name (when it moves where data lives), by the
   * name lower-cased.
   */
  readonly notes?: Readonly<Record<string, string>>;
  /**
   * Names other libraries take here that have no counterpart (express-session's `resave`), by the name lower-cased,
   * each with what to do instead: explained when found, never suggested for a typo.
   */
  readonly foreign?: Readonly<Record<string, string>>;
}

const join = (path: string, name: string): string => (path ? `${path}.${name}` : name);

/**
 * Configuration read from the environment arrives as strings; a number or a boolean written as one is named
 * as such, with the conversion to make.
 */
function stringHint(value: string): string {
  if (value === 'true' || value === 'false') return `, a string: pass ${value} (a boolean)`;
  if (value.trim() !== '' && !Number.isNaN(Number(value))) return ', a string: convert it with Number()';
  return '';
}

/** An option's value as an error message shows it: strings quoted (and redacted), so `"500"` is not read as 500. */
export function describeOptionValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return quoteRedacted(value) + stringHint(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'symbol') return value.toString();
  return typeof value;
}

/**
 * Collects unknown option names while the caller walks its options, level by level, so one startup
 * error can name all of them (a config file with two typos should not need two restarts).
 */
export class UnknownOptionNames {
  private readonly problems: string[] = [];

  /** @param owner the word the messages start with: `SessionModule` or `Redis`. */
  constructor(private readonly owner: string) {}

  /**
   * Checks the names of one options object and returns it so the walk can go deeper; undefined when it
   * is absent, or not an object (recorded as a problem, `expected` says what it must be instead).
   */
  check(
    value: unknown,
    level: OptionLevel,
    expected = 'an object',
  ): Readonly<Record<string, unknown>> | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const subject = level.path ? `${this.owner} option ${level.path}` : `${this.owner} options`;
      this.problems.push(`${subject} must be ${expected} (got ${describeOptionValue(value)}).`);
      return undefined;
    }
    for (const name of Object.keys(value)) {
      if (!level.names.includes(name)) this.problems.push(this.unknown(name, level));
    }
    return value as Readonly<Record<string, unknown>>;
  }

  /** One line per problem found, or undefined when every name was known. */
  message(): string | undefined {
    return this.problems.length > 0 ? this.problems.join('\n') : undefined;
  }

  private unknown(name: string, level: OptionLevel): string {
    const besides = level.besides ?? {};
    if (Object.hasOwn(besides, name))
      return `${this.owner} option ${join(level.path, name)} ${besides[name]}`;
    const subject = `${this.owner} option ${join(level.path, name)} is unknown`;
    const lowerName = name.toLowerCase();
    if (level.foreign && Object.hasOwn(level.foreign, lowerName))
      return `${subject}: ${level.foreign[lowerName]}`;
    const close = closestOptionName(name, { ...level, names: [...level.names, ...Object.keys(besides)] });
    if (close !== undefined) {
      const lower = name.toLowerCase();
      const note =
        level.notes && Object.hasOwn(level.notes, lower)
          ? ` ${level.notes[lower]}`
          : Object.hasOwn(besides, close)
            ? ` ${close} ${besides[close]}`
            : '';
      return `${subject}: did you mean ${join(level.path, close)}?${note}`;
    }
    const other = level.elsewhere?.find((o) => o.names.some((n) => n.toLowerCase() === name.toLowerCase()));
    if (other) {
      const meant = other.names.find((n) => n.toLowerCase() === name.toLowerCase())!;
      return `${subject}: did you mean ${join(other.path, meant)}?`;
    }
    const where = level.path ? `of ${level.path}` : 'at the top level';
    return `${subject}. The options ${where} are: ${level.names.join(', ')}.`;
  }
}
