/*
 * `nest-session-state/terminus`: the session store's health indicator for @nestjs/terminus (an
 * optional peer), in its own entry so that the main entry loads without it.
 */

// Terminus entry (nest-session-state/terminus)
export {
  SessionStoreHealthIndicator,
  type SessionStoreHealthOptions,
} from './health/session-store.health-indicator.js';
