export { TestDatabase } from './test-database.js';
export { countingPool } from './counting-pool.js';
export { countedStore, type CountedStore } from './counted-store.js';
export { HandshakeFaultProxy, type HandshakeFault } from './handshake-fault-proxy.js';
export { PgBouncerProcess } from './pgbouncer.process.js';
