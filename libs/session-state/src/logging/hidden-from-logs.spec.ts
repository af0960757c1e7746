import { inspect } from 'node:util';
import { MemoryEntryTable } from '../cache/memory/memory-entry.table.js';
import { MemoryDistributedCache } from '../cache/memory/memory.cache.js';
import { PostgresConnection } from '../cache/postgres/postgres.connection.js';
import { RedisDistributedCache } from '../cache/redis/redis.cache.js';
import { RedisConnection } from '../cache/redis/redis.connection.js';
import { ReadOnlySessionHost } from '../gateway/gateway-session.host.js';
import { GatewaySessions } from '../gateway/gateway-sessions.service.js';
import { AuthenticatedEncryptor } from '../protection/authenticated-encryptor.js';
import { CookieSigner } from '../protection/cookie-signer.js';
import { KeyRing } from '../protection/key-ring.js';
import { RequestState } from '../request/request-state.js';
import { SessionLifecycle } from '../session/session.lifecycle.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { CacheSessionStore } from '../session/stores/cache-session.store.js';
import { EndedSessionMarks } from '../session/stores/ended-session.marks.js';
import { MemorySessionStore } from '../session/stores/memory-session.store.js';
import { PostgresSessionStore } from '../session/stores/postgres-session.store.js';
import { RedisSessionStore } from '../session/stores/redis-session.store.js';
import { SessionNearCache } from '../session/stores/session-near-cache.js';
import { CookieTempDataProvider } from '../temp-data/cookie-temp-data.provider.js';
import { SessionTempDataProvider } from '../temp-data/session-temp-data.provider.js';
import { TempDataLifecycle } from '../temp-data/temp-data.lifecycle.js';
import { MemoryUserSessionIndex } from '../users/memory-user-session.index.js';
import { PostgresUserSessionIndex } from '../users/postgres/postgres-user-session.index.js';
import { RedisUserSessionIndex } from '../users/redis/redis-user-session.index.js';
import { UserSessions } from '../users/user-sessions.service.js';
import { HiddenFromLogs } from './hidden-from-logs.js';

/**
 * Every class that holds key material, session keys, store credentials or objects that do: each one hidden by itself
 * (test/security/nothing-secret-in-logs.e2e.spec.ts prints them from the outside, where one hidden holder hides
 * what it holds).
 */
const HOLDERS = {
  KeyRing,
  CookieSigner,
  AuthenticatedEncryptor,
  SessionRuntime,
  RequestState,
  SessionLifecycle,
  TempDataLifecycle,
  CookieTempDataProvider,
  SessionTempDataProvider,
  MemoryEntryTable,
  MemoryDistributedCache,
  RedisDistributedCache,
  RedisConnection,
  PostgresConnection,
  CacheSessionStore,
  MemorySessionStore,
  RedisSessionStore,
  PostgresSessionStore,
  EndedSessionMarks,
  SessionNearCache,
  MemoryUserSessionIndex,
  RedisUserSessionIndex,
  PostgresUserSessionIndex,
  UserSessions,
  GatewaySessions,
  ReadOnlySessionHost,
};

describe('HiddenFromLogs', () => {
  it.each(Object.entries(HOLDERS))('%s prints as its name alone, in util.inspect and JSON', (name, type) => {
    const instance = Object.create(type.prototype as object) as object;
    Object.assign(instance, { secret: 'do-not-print' });
    expect(inspect(instance, { depth: 10 })).toBe(`${name} <not shown in logs>`);
    expect(JSON.stringify({ held: instance })).toBe('{"held":{}}');
  });

  it('shows a summary where one is given, nested objects to the depth asked for', () => {
    @HiddenFromLogs<Holder>((holder) => ({ count: holder.items.length, nested: { deeper: { deepest: 1 } } }))
    class Holder {
      readonly key = 'do-not-print';
      readonly items = [1, 2];
    }
    const holder = new Holder();
    expect(inspect(holder)).toBe('Holder { count: 2, nested: { deeper: { deepest: 1 } } }');
    expect(inspect({ a: { b: holder } }, { depth: 1 })).toBe('{ a: { b: [Holder] } }');
    expect(JSON.stringify(holder)).toBe('{"count":2,"nested":{"deeper":{"deepest":1}}}');
  });
});
