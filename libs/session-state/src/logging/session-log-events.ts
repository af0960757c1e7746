import type { LoggerService } from '@nestjs/common';

/** The Nest log levels the library writes at. */
export type SessionLogLevel = 'debug' | 'log' | 'warn' | 'error';

/**
 * One kind of log line the library writes: a stable numeric id and name (ASP.NET's `EventId`, as its
 * `LoggerMessage.Define` gives every line) and its level. Lines start with `[<name>] `, so a log
 * pipeline can filter or alert on the name while the wording after it improves.
 *
 * @example
 * const isOutage = (line: string) => line.startsWith(`[${SessionLogEvents.SessionStoreUnavailable.name}]`);
 */
export interface SessionLogEvent {
  readonly id: number;
  readonly name: string;
  readonly level: SessionLogLevel;
}

const event = (id: number, name: string, level: SessionLogLevel): SessionLogEvent =>
  Object.freeze({ id, name, level });

/**
 * Every log line nest-session-state writes, by name. Ids are grouped: 1xxx session, 2xxx TempData,
 * 3xxx stores and connections, 4xxx module startup. Names and ids never change once released; see
 * docs/observability.md for what each means and what to do about it.
 *
 * @example
 * // a LoggerService that turns the prefix into a field
 * const match = /^\[(\w+)\] /.exec(message); if (match) fields.event = match[1];
 */
export const SessionLogEvents = Object.freeze({
  SessionStarted: event(1001, 'SessionStarted', 'debug'),
  SessionExpired: event(1002, 'SessionExpired', 'debug'),
  SessionCookieRejected: event(1003, 'SessionCookieRejected', 'debug'),
  SessionNotStoredWithoutConsent: event(1004, 'SessionNotStoredWithoutConsent', 'debug'),
  ConsentCheckFailed: event(1005, 'ConsentCheckFailed', 'error'),
  SessionLoadFailed: event(1010, 'SessionLoadFailed', 'warn'),
  SessionCommitFailed: event(1011, 'SessionCommitFailed', 'warn'),
  SessionRefreshFailed: event(1012, 'SessionRefreshFailed', 'warn'),
  SessionUnlockFailed: event(1013, 'SessionUnlockFailed', 'warn'),
  SessionCommitRefused: event(1014, 'SessionCommitRefused', 'warn'),
  SessionMoveCopyNotDeleted: event(1015, 'SessionMoveCopyNotDeleted', 'warn'),
  SessionResponseStarted: event(1020, 'SessionResponseStarted', 'warn'),
  SessionCookieNotSent: event(1021, 'SessionCookieNotSent', 'warn'),
  SessionResponseHoldOverflow: event(1022, 'SessionResponseHoldOverflow', 'warn'),
  CookieSameSiteNoneNotSecure: event(1023, 'CookieSameSiteNoneNotSecure', 'warn'),
  CookiePrefixNotSecure: event(1024, 'CookiePrefixNotSecure', 'warn'),
  SecureCookieOverHttp: event(1025, 'SecureCookieOverHttp', 'warn'),
  UserSessionsFailed: event(1030, 'UserSessionsFailed', 'warn'),
  TempDataCookieRejected: event(2001, 'TempDataCookieRejected', 'debug'),
  TempDataNotStoredWithoutConsent: event(2002, 'TempDataNotStoredWithoutConsent', 'debug'),
  TempDataSessionValueMalformed: event(2003, 'TempDataSessionValueMalformed', 'warn'),
  TempDataResponseStarted: event(2010, 'TempDataResponseStarted', 'warn'),
  TempDataSaveFailed: event(2011, 'TempDataSaveFailed', 'error'),
  TempDataCookieTooLarge: event(2012, 'TempDataCookieTooLarge', 'error'),
  TempDataKeptValuesDropped: event(2013, 'TempDataKeptValuesDropped', 'warn'),
  SessionStoreUnavailable: event(3001, 'SessionStoreUnavailable', 'warn'),
  SessionStoreRecovered: event(3002, 'SessionStoreRecovered', 'log'),
  RedisFailureSwallowed: event(3003, 'RedisFailureSwallowed', 'debug'),
  RedisPermissionDenied: event(3004, 'RedisPermissionDenied', 'error'),
  RedisConnectionSilent: event(3005, 'RedisConnectionSilent', 'warn'),
  RedisAuthenticationFailed: event(3006, 'RedisAuthenticationFailed', 'error'),
  NearCacheDisabled: event(3010, 'NearCacheDisabled', 'warn'),
  NearCacheEnabled: event(3011, 'NearCacheEnabled', 'log'),
  MemoryStoreFull: event(3020, 'MemoryStoreFull', 'warn'),
  SessionRecordUnreadable: event(3021, 'SessionRecordUnreadable', 'warn'),
  SessionEndMarkNotWritten: event(3022, 'SessionEndMarkNotWritten', 'warn'),
  EphemeralKeyRing: event(4001, 'EphemeralKeyRing', 'warn'),
  TempDataCookieBudget: event(4002, 'TempDataCookieBudget', 'warn'),
  RedisSentinelWithoutFailoverDetector: event(4003, 'RedisSentinelWithoutFailoverDetector', 'warn'),
  RedisTooFewReplicas: event(4004, 'RedisTooFewReplicas', 'warn'),
  DurationInMilliseconds: event(4005, 'DurationInMilliseconds', 'warn'),
  PostgresWithoutStatementTimeout: event(4006, 'PostgresWithoutStatementTimeout', 'warn'),
  PostgresSslOptionIgnored: event(4007, 'PostgresSslOptionIgnored', 'warn'),
});

/** The name of one of {@link SessionLogEvents}. */
export type SessionLogEventName = keyof typeof SessionLogEvents;

/** Writes `message` at the event's level, prefixed with the event's name: `[SessionCommitFailed] ...`. */
export function logEvent(logger: LoggerService, logEvent: SessionLogEvent, message: string): void {
  logger[logEvent.level]?.(`[${logEvent.name}] ${message}`);
}
