import { Controller, Get, Header } from '@nestjs/common';
import { sampleMetrics } from './sample-metrics.js';

/** `GET /metrics`: the session metrics in Prometheus text format. Never touches the session. */
@Controller('metrics')
export class MetricsController {
  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  scrape(): Promise<string> {
    return sampleMetrics.scrape();
  }
}
