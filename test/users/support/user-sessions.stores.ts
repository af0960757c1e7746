import type { INestApplication } from '@nestjs/common';
import { ManualClock, MemorySessionStore, type SessionModuleOptions } from 'nest-session-state';
import { startSessionApp } from '../../support/apps/session-test.app.js';
import { TestDatabase } from '../../support/postgres/index.js';
import { RedisClusterProcess, RedisServerProcess } from '../../support/redis/index.js';
import { UserSessionsTestController } from './user-sessions.controller.js';

export const SECRETS = ['uS3rS3ss10ns-k8JdQ0wZr4Vn1pYt6sXc2bLm9gHf3aEu7iOq5yTz0R'];

/**
 * One store kind the users suites run on. `options()` gives what every instance of one "deployment"
 * shares (one store); `expire(ms)` makes `ms` pass for the store (the memory store's clock, real time on Redis).
 */
export interface StoreUnderTest {
  readonly name: string;
  readonly redis: RedisServerProcess | RedisClusterProcess | undefined;
  /** The database of the PostgreSQL kind (undefined for the others). */
  readonly database?: TestDatabase;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Options of a new deployment: instances started with the same object share its sessions. */
  deployment(extra?: SessionModuleOptions): SessionModuleOptions;
  expire(ms: number): Promise<void>;
  /** True when `expire` is real time: tests keep idle timeouts short. */
  readonly realTime: boolean;
}

let apps = 0;

function memory(): StoreUnderTest {
  const clock = new ManualClock(Date.now());
  return {
    name: 'memory',
    redis: undefined,
    realTime: false,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    deployment: (extra = {}) => ({
      secrets: SECRETS,
      ...extra,
      store: new MemorySessionStore({ clock }),
    }),
    expire: (ms) => Promise.resolve(clock.advance(ms)),
  };
}

function redis(nearCache: boolean): StoreUnderTest {
  let server: RedisServerProcess | undefined;
  return {
    name: nearCache ? 'redis with near cache' : 'redis',
    get redis() {
      return server;
    },
    realTime: true,
    start: async () => void (server = await RedisServerProcess.start()),
    stop: async () => server?.stop(),
    deployment: (extra = {}) => ({
      secrets: SECRETS,
      ...extra,
      redis: { host: server!.host, port: server!.port, applicationName: `users${++apps}`, nearCache },
    }),
    expire: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

function cluster(): StoreUnderTest {
  let process: RedisClusterProcess | undefined;
  return {
    name: 'redis cluster',
    get redis() {
      return process;
    },
    realTime: true,
    start: async () => void (process = await RedisClusterProcess.start({ masters: 3 })),
    stop: async () => process?.stop(),
    deployment: (extra = {}) => ({
      secrets: SECRETS,
      ...extra,
      redis: {
        clusterNodes: process!.nodes.map((n) => `${n.host}:${n.port}`),
        applicationName: `users${++apps}`,
      },
    }),
    expire: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

/** Each deployment is a table of its own (`tableName`) in one database of the suite's. */
function postgres(): StoreUnderTest {
  let database: TestDatabase | undefined;
  const clock = new ManualClock(Date.now());
  return {
    name: 'postgres',
    redis: undefined,
    get database() {
      return database;
    },
    realTime: false,
    start: async () => void (database = await TestDatabase.create()),
    stop: async () => database?.drop(),
    deployment: (extra = {}) => ({
      secrets: SECRETS,
      ...extra,
      postgres: {
        connectionString: database!.url(),
        tableName: `users${++apps}`,
        clock,
        pruneIntervalInMilliseconds: 0,
      },
    }),
    expire: (ms) => Promise.resolve(clock.advance(ms)),
  };
}

/** Every store the users suites run on. */
export const STORES: (() => StoreUnderTest)[] = [
  memory,
  () => redis(false),
  () => redis(true),
  cluster,
  postgres,
];

/** An instance of the test app over `options` (instances over the same options share sessions). */
export function startUsersApp(
  options: SessionModuleOptions,
): Promise<{ app: INestApplication; url: string }> {
  return startSessionApp(options, { controllers: [UserSessionsTestController] });
}
