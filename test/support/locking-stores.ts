import type { SessionModuleOptions } from 'nest-session-state';
import { TestDatabase } from './postgres/index.js';
import { RedisServerProcess } from './redis/index.js';

/** Sets up a store for one describe: the module options that select it, and how to stop it afterwards. */
export type StoreSetup = () => Promise<{ options: SessionModuleOptions; stop(): Promise<void> }>;

/**
 * The stores that keep session locks, for `describe.each`: memory, Redis (a redis-server of its own, its keys under
 * `applicationName`), PostgreSQL (a database of its own, dropped afterwards).
 */
export function lockingStores(applicationName: string): [string, StoreSetup][] {
  return [
    ['memory', () => Promise.resolve({ options: {}, stop: () => Promise.resolve() })],
    [
      'redis',
      async () => {
        const server = await RedisServerProcess.start();
        return {
          options: { redis: { host: server.host, port: server.port, applicationName } },
          stop: () => server.stop(),
        };
      },
    ],
    [
      'postgresql',
      async () => {
        const db = await TestDatabase.create();
        return { options: { postgres: { connectionString: db.url() } }, stop: () => db.drop() };
      },
    ],
  ];
}
