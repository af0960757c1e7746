import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { SessionMetricsOptions } from 'nest-session-state';

/**
 * The sample app's OpenTelemetry SDK: one MeterProvider whose reader is a PrometheusExporter that
 * opens no port of its own (`preventServerStart`): `GET /metrics` serves what it collects, on the
 * app's own port and platform.
 */
export class SampleMetrics {
  private readonly exporter = new PrometheusExporter({ preventServerStart: true });
  private readonly serializer = new PrometheusSerializer();
  readonly meterProvider = new MeterProvider({ readers: [this.exporter] });

  /** The SessionModule option that sends the session metrics to this provider. */
  get sessionOption(): SessionMetricsOptions {
    return { meterProvider: this.meterProvider };
  }

  /** The metrics now, in the Prometheus text exposition format. */
  async scrape(): Promise<string> {
    const { resourceMetrics, errors } = await this.exporter.collect();
    if (errors.length > 0) throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
    return this.serializer.serialize(resourceMetrics);
  }
}

/** One per process: the session module and `GET /metrics` share it. */
export const sampleMetrics = new SampleMetrics();
