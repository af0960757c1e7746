/*
 * `nest-session-state/postgres`: the PostgreSQL classes, for apps that build their own store on a
 * connection they manage. They import pg, so they live in their own entry; `SessionModule.forRoot({
 * postgres })` needs none of them and loads them on demand.
 */

// PostgreSQL entry (nest-session-state/postgres)
export { PostgresConnection } from './cache/postgres/postgres.connection.js';
export { resolvePostgresOptions } from './cache/postgres/postgres-options.validator.js';
export { PostgresSessionStore } from './session/stores/postgres-session.store.js';
