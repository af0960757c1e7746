import { Controller, Get, Inject, Module } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { SessionStoreHealthIndicator } from 'nest-session-state/terminus';

/** `GET /health`: terminus with the session store's indicator, as the docs show it. */
@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(SessionStoreHealthIndicator) private readonly sessions: SessionStoreHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.sessions.isHealthy('session-store')]);
  }
}

@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [SessionStoreHealthIndicator],
})
export class HealthModule {}

/** The body terminus answers: `{ status, info, error, details }`. */
export interface HealthBody {
  status: 'ok' | 'error';
  details: Record<string, { status: 'up' | 'down'; store?: string; message?: string }>;
}
