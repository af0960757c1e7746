import { SessionConfigurationError } from '../errors/configuration.errors.js';
import type { SessionStore } from '../session/stores/session-store.interface.js';
import { SESSION_METER_NAME } from './session-metric.names.js';
import { SessionMetrics } from './session-metrics.js';
import type { SessionMeterLike, SessionMetricsOptions } from './session-metrics.options.js';

/**
 * The module's metrics, or undefined when they are off (see {@link SessionMetricsOptions}). Without
 * the option, `@opentelemetry/api` (an optional peer) is imported here, once at startup, and only a
 * provider an SDK registered counts: the API's no-op provider means off, so an app without an SDK
 * pays nothing per request.
 */
export async function resolveSessionMetrics(
  options: SessionMetricsOptions | undefined,
  store: SessionStore,
): Promise<SessionMetrics | undefined> {
  const meter = options === undefined ? await globalMeter() : explicitMeter(options);
  if (!meter) return undefined;
  const counts = store.nearCacheCounts;
  return new SessionMetrics(
    meter,
    store.storeType ?? 'custom',
    counts && (() => ({ nearCacheHits: counts.hits, nearCacheMisses: counts.misses })),
  );
}

function explicitMeter(options: SessionMetricsOptions): SessionMeterLike | undefined {
  if (options === false) return undefined;
  if (typeof options === 'object' && options !== null) {
    if (options.meter && typeof options.meter.createCounter === 'function') return options.meter;
    if (options.meterProvider && typeof options.meterProvider.getMeter === 'function') {
      return options.meterProvider.getMeter(SESSION_METER_NAME);
    }
  }
  throw new SessionConfigurationError(
    'SessionModule option metrics must be false, { meterProvider } (an OpenTelemetry MeterProvider) or ' +
      '{ meter } (an OpenTelemetry Meter); leave it out to use the global MeterProvider of @opentelemetry/api.',
  );
}

interface OpenTelemetryApi {
  metrics: { getMeterProvider(): { getMeter(name: string): SessionMeterLike } };
  createNoopMeter(): unknown;
}

async function globalMeter(): Promise<SessionMeterLike | undefined> {
  let api: OpenTelemetryApi;
  try {
    // A variable specifier: bundlers and the type checker leave the optional peer alone.
    const specifier = '@opentelemetry/api';
    api = (await import(specifier)) as OpenTelemetryApi;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined; // as documented
    throw error;
  }
  const meter = api.metrics.getMeterProvider().getMeter(SESSION_METER_NAME);
  return meter === api.createNoopMeter() ? undefined : meter;
}
