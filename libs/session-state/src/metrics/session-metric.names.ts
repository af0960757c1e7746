/**
 * The instruments' names (OpenTelemetry semantic-convention style: dotted, lower case, units in
 * `unit`, not in the name). Prometheus shows them as `session_loads_total`, `session_commit_duration_bucket`, ...
 *
 * @example
 * // an SDK view that drops the histogram
 * new MeterProvider({ views: [{ instrumentName: SessionMetricNames.commitDuration, aggregation: { type: AggregationType.DROP } }] });
 */
export const SessionMetricNames = Object.freeze({
  /** Counter `{load}`: sessions read from the store. Attributes: `session.store`, `session.found`. */
  loads: 'session.loads',
  /** Counter `{commit}`: changes written to the store. Attributes: `session.store`. */
  commits: 'session.commits',
  /** Counter `{failure}`: store operations that failed. Attributes: `session.store`, `session.operation`, `error.type`. */
  failures: 'session.failures',
  /** Counter `{wait}`: waits for a session lock another request held. Attributes: `session.store`. */
  lockWaits: 'session.lock.waits',
  /** Counter `{hit}`: loads the Redis near cache answered. Attributes: `session.store`. */
  nearCacheHits: 'session.near_cache.hits',
  /** Counter `{miss}`: loads the Redis near cache sent to Redis. Attributes: `session.store`. */
  nearCacheMisses: 'session.near_cache.misses',
  /** Histogram `s`: how long a commit took in the store. Attributes: `session.store`. */
  commitDuration: 'session.commit.duration',
});

/** The instrumentation scope's name (`otel_scope_name` in Prometheus). */
export const SESSION_METER_NAME = 'nest-session-state';
