export { TestDatabase } from './test-database.js';
export { countingPool } from './counting-pool.js';
