/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api`) the library uses. Declared here so the
 * core entry needs no `@opentelemetry/api` types or code: an SDK's meter (or the API's) fits as is.
 *
 * @example
 * import { metrics } from '@opentelemetry/api';
 * SessionModule.forRoot({ metrics: { meter: metrics.getMeter('my-app') } });
 */
export interface SessionMeterLike {
  createCounter(
    name: string,
    options?: SessionInstrumentOptions,
  ): { add(value: number, attributes?: SessionMetricAttributes): void };
  createHistogram(
    name: string,
    options?: SessionInstrumentOptions,
  ): { record(value: number, attributes?: SessionMetricAttributes): void };
  createObservableCounter(
    name: string,
    options?: SessionInstrumentOptions,
  ): {
    addCallback(
      callback: (result: { observe(value: number, attributes?: SessionMetricAttributes): void }) => void,
    ): void;
  };
}

/**
 * The part of an OpenTelemetry `MeterProvider` the library uses (an SDK's `MeterProvider` fits).
 *
 * @example
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * SessionModule.forRoot({ metrics: { meterProvider: new MeterProvider({ readers: [reader] }) } });
 */
export interface SessionMeterProviderLike {
  getMeter(name: string, version?: string): SessionMeterLike;
}

/** Attributes of one measurement: low-cardinality values only (never a session key or id). */
export type SessionMetricAttributes = Record<string, string | number | boolean>;

/** What an instrument is created with (OpenTelemetry's `MetricOptions`). */
export interface SessionInstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

/**
 * Session metrics through OpenTelemetry (see docs/observability.md for the instruments).
 *
 * - left out (default): the global `MeterProvider` of `@opentelemetry/api` when that package is
 *   installed and an SDK registered one before the module started; otherwise metrics are off.
 * - `{ meterProvider }`: this provider (an SDK `MeterProvider`), global or not.
 * - `{ meter }`: this meter.
 * - `false`: off, even with a global provider.
 *
 * Off means off: no instrument, no clock read, nothing on the request path.
 *
 * @example
 * const meterProvider = new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] });
 * SessionModule.forRoot({ redis: { url }, metrics: { meterProvider } });
 */
export type SessionMetricsOptions =
  | false
  | { meterProvider: SessionMeterProviderLike; meter?: undefined }
  | { meter: SessionMeterLike; meterProvider?: undefined };
