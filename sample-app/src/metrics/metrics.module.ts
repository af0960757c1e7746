import { Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller.js';

/** `GET /metrics` (Prometheus text) from the sample app's OpenTelemetry MeterProvider. */
@Module({ controllers: [MetricsController] })
export class MetricsModule {}
