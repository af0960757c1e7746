import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SessionStoreHealthIndicator } from 'nest-session-state/terminus';
import { HealthController } from './health.controller.js';

/** Terminus with the session store's health indicator (`GET /health`). */
@Module({
  // Terminus logs each failed check with its details; the library already logs the outage once.
  imports: [TerminusModule.forRoot({ errorLogStyle: 'pretty', logger: false })],
  controllers: [HealthController],
  providers: [SessionStoreHealthIndicator],
})
export class HealthModule {}
