import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { SessionStore } from '../session/stores/session-store.interface.js';
import { healthProbeTimeout } from './health-probe-timeout.js';

/**
 * Options of {@link SessionStoreHealthIndicator.isHealthy}.
 *
 * @example
 * this.health.check([() => this.sessions.isHealthy('session-store', { timeout: 1000 })]);
 */
export interface SessionStoreHealthOptions {
  /**
   * Longest wait for the store's answer, in ms, before it is reported down. The module's stores bound
   * their probe by their own operation timeout already (Redis `operationTimeoutInMilliseconds`,
   * PostgreSQL `operationTimeoutInMilliseconds`); this also bounds a custom store's `ping()`. Default 5000;
   * `Infinity`: no bound but the store's own; at most 2147483647 otherwise (the longest delay a Node timer runs).
   */
  timeout?: number | undefined;
}

const DEFAULT_TIMEOUT = 5000;

/**
 * A `@nestjs/terminus` health indicator for the session store: up when it answers its probe
 * (`SessionStore.ping()`: memory always, Redis PING, every master of a Redis Cluster, PostgreSQL
 * `SELECT 1`), down with the reason otherwise. Never hangs: the probe is bounded by the store's
 * operation timeout (and `timeout`). Up again as soon as the store answers: no restart, no state kept.
 *
 * Provide it next to `TerminusModule` (it needs terminus's `HealthIndicatorService` and the
 * `SessionModule`'s store).
 *
 * @example
 * \@Controller('health')
 * export class HealthController {
 *   constructor(private readonly health: HealthCheckService, private readonly sessions: SessionStoreHealthIndicator) {}
 *   \@Get() \@HealthCheck()
 *   check() { return this.health.check([() => this.sessions.isHealthy('session-store')]); }
 * }
 * \@Module({ imports: [TerminusModule], controllers: [HealthController], providers: [SessionStoreHealthIndicator] })
 * export class HealthModule {}
 * // up:   { "session-store": { "status": "up", "store": "redis", "responseTime": 1 } }
 * // down: { "session-store": { "status": "down", "store": "redis",
 * //          "message": "Redis at 127.0.0.1:6379 is not connected (reconnecting; last error: connect ECONNREFUSED 127.0.0.1:6379)." } }
 */
@Injectable()
export class SessionStoreHealthIndicator {
  private readonly health: HealthIndicatorService;
  private readonly store: SessionStore;

  constructor(
    @Optional() @Inject(HealthIndicatorService) health: HealthIndicatorService | undefined,
    @Optional() @Inject(SessionStore) store: SessionStore | undefined,
  ) {
    // Nest's own error for a missing provider names neither module to import.
    if (!store) {
      throw new SessionConfigurationError(
        'SessionStoreHealthIndicator needs the session store: import SessionModule.forRoot() (or forRootAsync()) ' +
          "in the app's root module. With isGlobal: false, import the module that exports SessionModule where " +
          'the indicator is provided.',
      );
    }
    if (!health) {
      throw new SessionConfigurationError(
        'SessionStoreHealthIndicator needs @nestjs/terminus: import TerminusModule in the module that provides ' +
          'the indicator.',
      );
    }
    this.health = health;
    this.store = store;
  }

  /** Probes the store; `key` names the entry in the health report (default `session-store`). */
  async isHealthy<const Key extends string = 'session-store'>(
    key: Key = 'session-store' as Key,
    options: SessionStoreHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.health.check(key);
    const store = this.store.storeType ?? 'custom';
    if (!this.store.ping) return indicator.up({ store, probe: 'none' });
    const timeout = healthProbeTimeout(options.timeout ?? DEFAULT_TIMEOUT);
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = this.store.ping();
      await (timeout === undefined
        ? answer
        : Promise.race([
            answer,
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`The session store did not answer within ${timeout} ms (timeout).`)),
                timeout,
              );
            }),
          ]));
      return indicator.up({ store, responseTime: Math.round(performance.now() - started) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return indicator.down({ store, message });
    } finally {
      clearTimeout(timer);
    }
  }
}
