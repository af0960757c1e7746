import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { SessionStoreHealthIndicator } from 'nest-session-state/terminus';

/**
 * `GET /health`: 200 `{ status: 'ok', ... }` while the session store answers, 503 with the reason
 * (`details['session-store'].message`) when it does not. Never touches the session: no cookie.
 */
@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(SessionStoreHealthIndicator) private readonly sessionStore: SessionStoreHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.sessionStore.isHealthy('session-store')]);
  }
}
