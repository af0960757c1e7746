import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type HistogramMetricData,
  type MetricData,
} from '@opentelemetry/sdk-metrics';

/** A pull reader for tests: `collect()` on demand, as a Prometheus scrape does. */
class PullReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A real SDK MeterProvider whose metrics a test reads back (cumulative, as Prometheus shows them). */
export class TestMetrics {
  readonly reader = new PullReader();
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });

  /** Every metric collected now, by instrument name. */
  async collect(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw errors[0];
    const byName = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics)
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    return byName;
  }

  /** The sum of a counter's points whose attributes include `where` (0 when none). */
  async count(name: string, where: Record<string, unknown> = {}): Promise<number> {
    const metric = (await this.collect()).get(name);
    if (!metric || metric.dataPointType !== DataPointType.SUM) return 0;
    return metric.dataPoints
      .filter((point) => Object.entries(where).every(([k, v]) => point.attributes[k] === v))
      .reduce((sum, point) => sum + point.value, 0);
  }

  /** The histogram's number of recordings and their sum. */
  async histogram(name: string): Promise<{ count: number; sum: number; unit: string }> {
    const metric = (await this.collect()).get(name) as HistogramMetricData | undefined;
    if (!metric) return { count: 0, sum: 0, unit: '' };
    return {
      count: metric.dataPoints.reduce((n, p) => n + p.value.count, 0),
      sum: metric.dataPoints.reduce((n, p) => n + (p.value.sum ?? 0), 0),
      unit: metric.descriptor.unit,
    };
  }

  shutdown(): Promise<void> {
    return this.meterProvider.shutdown();
  }
}
