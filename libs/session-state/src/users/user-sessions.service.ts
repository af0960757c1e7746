import { Inject, Injectable, Optional } from '@nestjs/common';
import { SessionReadOnlyError } from '../errors/gateway.errors.js';
import {
  SessionMovedError,
  SessionNotLoadedError,
  SessionUnavailableError,
} from '../errors/session.errors.js';
import { SESSION_MODULE_OPTIONS } from '../module/session-module.definition.js';
import type { SessionModuleOptions } from '../module/session-module.options.js';
import type { DistributedSession } from '../session/session.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { SESSION_USER_FIELD } from './user-session.fields.js';
import {
  isUserSessionIndexSource,
  oldestFirst,
  type LiveUserSession,
  type UserSessionIndex,
  type UserSessionRecord,
} from './user-session-index.interface.js';
import {
  UserSessionNotStoredError,
  UserSessionsUnavailableError,
  UserSessionsUnsupportedError,
} from './user-sessions.errors.js';
import { resolveMaxSessionsPerUser } from './user-sessions.options.js';
import { SessionLogEvents } from '../logging/session-log-events.js';
import { isWellFormedText, toWellFormedText } from '../session/well-formed-text.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/** Most metadata a binding records (names and values, UTF-16 code units): it is stored per session. */
const MAX_METADATA_CHARS = 2048;
/** Rounds of a revocation that follow its sessions to the keys sign-ins moved them to meanwhile. */
const MAX_REVOKE_ROUNDS = 3;

/**
 * One of a user's sessions, as {@link UserSessions.list} reports it. Never the session's key: `id` is
 * the public session id (`session.id`), safe to show and to send back to revoke it.
 *
 * @example
 * const devices = (await userSessions.list('alice')).map((s) => ({ id: s.id, agent: s.metadata.userAgent }));
 */
export interface UserSessionInfo {
  /** The public session id. */
  readonly id: string;
  /** True for the session of the request that asked. */
  readonly current: boolean;
  /** When the session was bound to the user (the sign-in). */
  readonly createdAt: Date;
  /**
   * When the session was last used, as its idle timeout tells (expiry minus `session.idleTimeout`):
   * exact on the memory store, within `session.slideSkipWindow` on Redis.
   */
  readonly lastSeenAt: Date;
  /** When the session expires unless used again. */
  readonly expiresAt: Date;
  /** What the app recorded at binding. */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Metadata recorded with a binding: the app chooses (user agent, address, device name...); string
 * values, at most 2048 characters in all.
 *
 * @example
 * await userSessions.bind(session, 'alice', { userAgent: req.headers['user-agent'] ?? '', device: 'Work laptop' });
 */
export type UserSessionMetadata = Readonly<Record<string, string>>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Who is signed in where: binds sessions to users, lists a user's sessions, and revokes one, all, or
 * all but the current one. Revocation deletes the session's data at once, on every instance (near-cache
 * copies included): the revoked session's next request sees an empty session. Works on the memory,
 * Redis, Redis Cluster and PostgreSQL stores. Option `users.maxSessionsPerUser` (default 100) revokes the oldest
 * sessions when a new one is bound beyond it.
 *
 * Binding stores the user id in the session (a reserved field) and commits the session. Call `bind()`
 * at sign-in after `regenerate()`, and again after any later `regenerate()` of a bound session (the
 * index records the session's store key). `session.abandon()` needs no call here: an abandoned
 * session's entry disappears from the list by itself.
 *
 * @example
 * \@Post('login')
 * async login(\@Session() session: DistributedSession, \@Body('user') user: string, \@Req() req: Request) {
 *   session.regenerate();
 *   session.setString('user', user);
 *   await this.userSessions.bind(session, user, { userAgent: req.headers['user-agent'] ?? '' });
 * }
 *
 * \@Post('password')
 * async changePassword(\@Session() session: DistributedSession) {
 *   await this.userSessions.revokeOthers(session); // sign out everywhere else
 * }
 */
@Injectable()
@HiddenFromLogs()
export class UserSessions {
  private readonly maxSessionsPerUser: number;
  private indexInstance: UserSessionIndex | undefined;

  constructor(
    // Not SessionAccessor: injecting it would switch AsyncLocalStorage on for every app (see
    // needsAsyncContext); the request's session is passed in by the caller instead.
    @Inject(SessionRuntime) private readonly runtime: SessionRuntime,
    @Optional() @Inject(SESSION_MODULE_OPTIONS) options?: SessionModuleOptions,
  ) {
    this.maxSessionsPerUser = resolveMaxSessionsPerUser(options?.users);
  }

  /**
   * Binds `session` (loaded) to `userId`, recording `metadata`, and commits it. Over
   * `maxSessionsPerUser`, the user's sessions beyond the newest that many (by binding time, then id)
   * are revoked: the oldest others, or this one too when sign-ins ran at once. Binding a session bound to
   * another user moves it. Throws {@link UserSessionNotStoredError} when the session could not be stored,
   * {@link UserSessionsUnavailableError} (503) when the store fails, a TypeError or RangeError for a user id or
   * `metadata` it refuses, `SessionLimitExceededError` (413) for a binding over `session.maxKeys`. A bind that
   * fails before the user's index records the session (its input refused included, unless the session is listed
   * for that user already: a device rename) abandons it (deleted, with its
   * cookie, at the end of the request): a failed sign-in never leaves a browser holding a session that is signed
   * in but cannot be listed or revoked (should the delete fail too, the response deletes the cookie rather than
   * send the new key).
   *
   * @returns true when the session is bound; false when it was revoked (or expired) while this request ran, or by this
   * bind itself (sign-ins at once past `maxSessionsPerUser`, this one not among the newest): nothing stays bound, the
   * session is abandoned as after any revocation, and the request is answered as usual (a route that renames a
   * device, say, can tell the user the session was signed out meanwhile).
   */
  async bind(
    session: DistributedSession,
    userId: string,
    metadata: UserSessionMetadata = {},
  ): Promise<boolean> {
    const recorded = this.refusingSignIn(session, userId, () => {
      checkUserId(userId);
      return checkMetadata(metadata);
    });
    loadedSession(session);
    const previous = this.userOf(session);
    // The key the previous user's entry records (undefined after a regenerate() not yet committed).
    const loadedKey = session.storeKey;
    // Over session.maxKeys (413), as refused input is.
    this.refusingSignIn(session, userId, () =>
      session.setReserved(SESSION_USER_FIELD, encoder.encode(userId)),
    );
    const sessionId = session.id;
    let indexed = false;
    let bound = true;
    try {
      await session.commit();
      const sessionKey = session.storeKey;
      if (sessionKey === undefined) throw new UserSessionNotStoredError();
      const replacesKey = movedBinding(session, previous, userId, sessionKey);
      await this.guard('bind', async () => {
        if (previous !== undefined && previous !== userId)
          await this.index.remove(previous, sessionId, loadedKey);
        const { idleTimeout, ioTimeout } = this.runtime.options;
        let live = await this.index.add(
          userId,
          { sessionId, sessionKey, metadata: recorded },
          idleTimeout,
          ioTimeout > 0 ? ioTimeout : undefined,
          replacesKey,
        );
        indexed = true; // listed: a failure from here on (the list below, a revocation) leaves it bound
        // add() may trust entries whose expiry has not passed (Redis probes only those that did): one of a session
        // abandoned meanwhile would count, and revoke a live session within the limit. Over it, every entry is probed.
        if (live.length > this.maxSessionsPerUser) live = await this.index.list(userId);
        if (!live.some((s) => s.sessionId === sessionId && s.sessionKey === sessionKey)) {
          // The session was revoked (or expired) while this request ran: its guarded commit applied nothing
          // and the index dropped the entry. Nothing is bound, as for any late change of a revoked session.
          abandonQuietly(session);
          bound = false;
          return;
        }
        const over = live.length - this.maxSessionsPerUser;
        if (over > 0) {
          // The newest maxSessionsPerUser stay (by binding time, then id), whoever binds, this session
          // included: concurrent binds, each listing some of the others, then agree on what goes, and the
          // bind that lists last leaves exactly the limit. Sparing this session would let an early bind
          // that lists later ones revoke one of those, and the last lister keep one too many.
          const revoked = [...live].sort(oldestFirst).slice(0, over);
          const ids = new Set(revoked.map((s) => s.sessionId));
          await this.revokeCovered(userId, revoked, (s) => ids.has(s.sessionId));
          if (revoked.some((s) => s.sessionId === sessionId && s.sessionKey === sessionKey)) {
            // Revoked by its own bind (another sign-in, bound meanwhile, is newer): signed in nowhere, as above.
            abandonQuietly(session);
            bound = false;
          }
        }
      });
    } catch (error) {
      // Bound in the store (by this commit, or by the end-of-request commit retrying it) but absent from
      // the index, the session would be signed in and invisible to list() and revoke(): sign-out
      // everywhere would miss it. Listed already (only the revocation of older ones failed), it stays.
      // Refused as moved (a sign-in sent twice: the other one moved the session): nothing was written, and an
      // abandon would delete the cookie the other sign-in just sent, and end the mark that turns such requests away.
      // Refused without trying (an earlier failure of the request is its answer, a GraphQL field's): nothing of this
      // sign-in was written, and an abandon would delete the visitor's session behind that failure's answer.
      if (!indexed && !(error instanceof SessionMovedError) && error !== session.refusingFailure)
        abandonQuietly(session);
      throw error;
    }
    return bound;
  }

  /**
   * Runs a step of `bind()` that refuses its input (a user id, metadata over its limit, a binding over
   * `session.maxKeys`). The app signed the session in before calling `bind()`, so a refusal abandons it as any failed
   * bind does: otherwise the browser keeps a signed-in session that no index lists or revokes. Not a session bound to
   * `userId` under the key its index entry records (a device rename: it stays listed as it was; see listedAs), nor one whose request failed already
   * in a way that refuses every commit (a GraphQL field's: that answer stands, as in bind()'s catch).
   */
  private refusingSignIn<T>(session: DistributedSession, userId: string, step: () => T): T {
    try {
      return step();
    } catch (error) {
      if (session.isLoaded && session.refusingFailure === undefined && !this.listedAs(session, userId))
        abandonQuietly(session);
      throw error;
    }
  }

  /**
   * Whether `session` is bound to `userId` under the key the request found it under, which its index entry records:
   * not after a `regenerate()` of this request (committed or not), nor when the store did not answer its load.
   */
  private listedAs(session: DistributedSession, userId: string): boolean {
    if (!session.isAvailable) return false;
    const bound = this.userOf(session);
    const key = session.storeKey;
    return bound !== undefined && bound === userId && key !== undefined && key === session.loadedStoreKey;
  }

  /** The user `session` is bound to, if any. */
  userOf(session: DistributedSession): string | undefined {
    const bytes = loadedSession(session).getReserved(SESSION_USER_FIELD);
    return bytes === undefined ? undefined : decoder.decode(bytes);
  }

  /**
   * Removes `session`'s binding (it stays a session, no longer listed for its user), committing the session first
   * so that the store forgets the binding before the index does. For sign-out, {@link signOut} does this and
   * abandons the session. Throws as `bind()` does; when the index step fails (503), the session is signed out
   * already and may stay listed until a retry or its expiry.
   */
  async unbind(session: DistributedSession): Promise<void> {
    const userId = this.userOf(session);
    if (userId === undefined) return;
    const sessionId = session.id;
    // Only the entry of this key: the same id signed in again in another tab (a new key) stays listed.
    const sessionKey = session.storeKey;
    session.setReserved(SESSION_USER_FIELD, undefined);
    // The store forgets the binding before the index does. Should the index step fail, or the abandon of a
    // sign-out (a lost session.lock, an outage), the session is at worst listed while signed in nowhere, which
    // a retry or its expiry clears; the other order could leave it signed in and listed nowhere.
    await session.commit();
    await this.guard('unbind', () => this.index.remove(userId, sessionId, sessionKey));
  }

  /** Sign-out: unbinds `session` and abandons it (its data and cookie are deleted at commit). */
  async signOut(session: DistributedSession): Promise<void> {
    await this.unbind(session);
    session.abandon();
  }

  /** The user's live sessions, oldest first; `current` (the request's session) is marked `current: true`. */
  async list(userId: string, current?: DistributedSession): Promise<UserSessionInfo[]> {
    checkUserId(userId);
    const currentId = current && this.idOf(current);
    const live = await this.guard('list', () => this.index.list(userId));
    const idle = this.runtime.options.idleTimeout;
    return live.map((s) => info(s, s.sessionId === currentId, idle));
  }

  /**
   * Revokes one of the user's sessions by its public id: its data is deleted, and its next request (on
   * any instance) finds an empty session. False when the user has no such session. When it is
   * `current` (the request's own session), that is abandoned too, so its cookie goes in this response;
   * a gateway's snapshot as `current` (`GatewaySessions.of(client)`) has no response to delete the cookie
   * in and stays as it is: its next `reload()` finds no session, as does the browser's next request.
   */
  async revoke(userId: string, sessionId: string, current?: DistributedSession): Promise<boolean> {
    checkUserId(userId);
    const live = await this.guard('list', () => this.index.list(userId));
    const revoked = await this.guard('revoke', () =>
      this.revokeCovered(userId, live, (s) => s.sessionId === sessionId),
    );
    if (revoked === 0) return false;
    if (current && this.idOf(current) === sessionId) abandonUnlessSnapshot(current);
    return true;
  }

  /**
   * Revokes every session of the user (sign out everywhere: after a password change, say), or all but
   * `options.except`. Returns how many were revoked. A revoked session whose request is running (this
   * one, say) saves nothing more: its commits apply only to the session it loaded, which is gone.
   */
  async revokeAll(
    userId: string,
    options: { except?: DistributedSession | undefined } = {},
  ): Promise<number> {
    checkUserId(userId);
    const keep = options.except && this.idOf(options.except);
    const live = await this.guard('list', () => this.index.list(userId));
    return this.guard('revoke', () => this.revokeCovered(userId, live, (s) => s.sessionId !== keep));
  }

  /** Revokes every other session of the user `session` is bound to; 0 when it is not bound. */
  async revokeOthers(session: DistributedSession): Promise<number> {
    const userId = this.userOf(session);
    return userId === undefined ? 0 : this.revokeAll(userId, { except: session });
  }

  /**
   * Revokes the sessions of `listed` that `covers` selects, then lists the user again and revokes those it selects
   * now, until a listing selects none (at most {@link MAX_REVOKE_ROUNDS} rounds). A device signing in again on another
   * instance (`regenerate()`, then `bind()`) is between two keys: a listing that probed its old key, emptied by the
   * move, dropped it as dead, or the revocation deleted the old key's data and then removed its entry only while it
   * still named that key; a `bind()` landing in between rewrites the entry to the new key, and the device stayed
   * signed in and listed past a "sign out everywhere". The next listing finds it under its new key. Returns how many
   * sessions (by id) were revoked.
   */
  private async revokeCovered(
    userId: string,
    listed: readonly UserSessionRecord[],
    covers: (session: UserSessionRecord) => boolean,
  ): Promise<number> {
    const revoked = new Set<string>();
    for (let round = 1; ; round++) {
      const due = listed.filter(covers);
      if (due.length > 0) {
        await this.index.revoke(userId, due);
        for (const session of due) revoked.add(session.sessionId);
      }
      if (round === MAX_REVOKE_ROUNDS || (round > 1 && due.length === 0)) return revoked.size;
      listed = await this.index.list(userId);
    }
  }

  /** The store's index, taken on first use (so an app that never uses it works on any store). */
  private get index(): UserSessionIndex {
    if (this.indexInstance) return this.indexInstance;
    const store = this.runtime.store;
    if (!isUserSessionIndexSource(store)) throw new UserSessionsUnsupportedError(store.constructor.name);
    return (this.indexInstance = store.userSessionIndex());
  }

  private async guard<T>(action: 'bind' | 'list' | 'revoke' | 'unbind', run: () => Promise<T>): Promise<T> {
    try {
      return await this.runtime.withIoTimeout(run());
    } catch (error) {
      if (error instanceof UserSessionsUnsupportedError) throw error;
      this.runtime.storeFailureLog.write(
        SessionLogEvents.UserSessionsFailed,
        `User sessions could not be ${action === 'list' ? 'listed' : action === 'bind' ? 'bound' : `${action}d`}: ${this.runtime.failureText(error)}`,
      );
      throw new UserSessionsUnavailableError(action, error);
    }
  }

  /** The id of a bound session (an unbound one is never listed, and reading `id` would create one). */
  private idOf(session: DistributedSession): string | undefined {
    return session.isLoaded && session.isAvailable && this.userOf(session) !== undefined
      ? session.id
      : undefined;
  }
}

/**
 * The key a binding of `session` to `userId` was listed under when the request loaded it, when this request moved it
 * since (a sign-in again, a key rotation: `regenerate()`). Between the move and the index step a revocation finds the
 * old key empty and drops the entry as dead, so the index step must not list the session again (it would stay signed
 * in past the revocation).
 */
function movedBinding(
  session: DistributedSession,
  previous: string | undefined,
  userId: string,
  sessionKey: string,
): string | undefined {
  const loadedKey = session.loadedStoreKey;
  return previous === userId && loadedKey !== undefined && loadedKey !== sessionKey ? loadedKey : undefined;
}

/** Abandons `session`, except a gateway's read-only snapshot, which refuses before it changes anything. */
function abandonUnlessSnapshot(session: DistributedSession): void {
  try {
    session.abandon();
  } catch (error) {
    if (!(error instanceof SessionReadOnlyError)) throw error;
  }
}

function info(s: LiveUserSession, current: boolean, idleTimeoutMs: number): UserSessionInfo {
  return {
    id: s.sessionId,
    current,
    createdAt: new Date(s.createdAt),
    lastSeenAt: new Date(Math.max(s.createdAt, s.expiresAt - idleTimeoutMs)),
    expiresAt: new Date(s.expiresAt),
    metadata: s.metadata,
  };
}

function loadedSession(session: DistributedSession): DistributedSession {
  if (!session.isLoaded) throw new SessionNotLoadedError();
  if (!session.isAvailable) throw new SessionUnavailableError('load');
  return session;
}

function checkUserId(userId: string): void {
  if (typeof userId !== 'string' || userId.length === 0) {
    throw new TypeError(`UserSessions needs a non-empty string user id (got ${JSON.stringify(userId)}).`);
  }
  // PostgreSQL text cannot hold NUL: refused on every store alike, so a user id works on each.
  if (userId.includes('\u0000')) {
    throw new TypeError(
      'UserSessions user ids must not contain the NUL character (\\u0000); PostgreSQL cannot store it. ' +
        'Pass the user id your app stores for the user (a database id, an email).',
    );
  }
  // Redis and PostgreSQL text are UTF-8: a lone surrogate would arrive as U+FFFD, and two users' ids meet.
  if (!isWellFormedText(userId)) {
    throw new TypeError(
      `UserSessions user ids must be well-formed UTF-16 (got ${JSON.stringify(userId)}, which has a lone surrogate).`,
    );
  }
}

function checkMetadata(metadata: UserSessionMetadata): Record<string, string> {
  const out: Record<string, string> = {};
  let chars = 0;
  for (const [name, value] of Object.entries(metadata ?? {})) {
    if (typeof value !== 'string') {
      throw new TypeError(`UserSessions metadata "${name}" must be a string (got ${typeof value}).`);
    }
    if (value.includes('\u0000') || name.includes('\u0000')) {
      throw new TypeError(
        `UserSessions metadata "${name.replaceAll('\u0000', '\\u0000')}" must not contain the NUL character ` +
          '(\\u0000); PostgreSQL cannot store it.',
      );
    }
    // A name with a lone surrogate would meet another in the stores' UTF-8; a value is only text to show (a user
    // agent cut at a length may split a pair): it gets U+FFFD, as Redis would store it, on every store.
    if (!isWellFormedText(name)) {
      throw new TypeError(
        `UserSessions metadata name ${JSON.stringify(name)} must be well-formed UTF-16 (it has a lone surrogate, ` +
          "which the stores' UTF-8 cannot hold).",
      );
    }
    chars += name.length + value.length;
    // Defined, not assigned: metadata named "__proto__" is kept like any other name.
    Object.defineProperty(out, name, {
      value: toWellFormedText(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  if (chars > MAX_METADATA_CHARS) {
    throw new RangeError(
      `UserSessions metadata is ${chars} characters, over the limit of ${MAX_METADATA_CHARS}: record less ` +
        '(truncate the user agent, say).',
    );
  }
  return out;
}

/**
 * Abandons a session whose sign-in failed. Refused once its response started, or for a gateway's read-only
 * snapshot (SessionResponseStartedError, SessionReadOnlyError): it then stays as it is, and the caller's
 * error is the one to throw.
 */
function abandonQuietly(session: DistributedSession): void {
  try {
    session.abandon();
  } catch {
    // See above: nothing more can be undone from here.
  }
}
