import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { optionNames } from '../options/option-names.check.js';
import { describeOptionValue } from '../options/option-names.check.js';

/** Default of {@link UserSessionsOptions.maxSessionsPerUser}. */
export const DEFAULT_MAX_SESSIONS_PER_USER = 100;

/**
 * Settings of `UserSessions` (SessionModule option `users`).
 *
 * @example
 * SessionModule.forRoot({ users: { maxSessionsPerUser: 1 } }); // a new sign-in signs the previous device out
 */
export interface UserSessionsOptions {
  /**
   * Most sessions bound to one user at once. Binding one more revokes the oldest (by binding time)
   * until the user is within the limit; the session being bound only when sign-ins at once bound newer ones
   * (its `bind()` then resolves false). `1`: a single session
   * per user. Default 100, which also bounds each user's index; `Infinity`: no limit.
   */
  maxSessionsPerUser?: number | undefined;
}

/** The names of {@link UserSessionsOptions}. */
export const USER_SESSIONS_OPTION_NAMES = optionNames<UserSessionsOptions>({ maxSessionsPerUser: true });

/** `maxSessionsPerUser`, validated (a positive integer or Infinity), with its default. */
export function resolveMaxSessionsPerUser(options: UserSessionsOptions | undefined): number {
  const value = options?.maxSessionsPerUser ?? DEFAULT_MAX_SESSIONS_PER_USER;
  if (value !== Infinity && (!Number.isInteger(value) || value < 1)) {
    throw new SessionConfigurationError(
      `SessionModule option users.maxSessionsPerUser must be a positive integer, or Infinity for no limit ` +
        `(got ${describeOptionValue(options?.maxSessionsPerUser)}).`,
    );
  }
  return value;
}
