import { SessionMetricNames } from './session-metric.names.js';
import type { SessionMeterLike, SessionMetricAttributes } from './session-metrics.options.js';
import { sessionFailureType } from './session-failure.type.js';

type Counter = ReturnType<SessionMeterLike['createCounter']>;
type Histogram = ReturnType<SessionMeterLike['createHistogram']>;

/** A store operation whose failure is counted (`session.operation`). */
export type SessionOperation = 'load' | 'commit' | 'refresh' | 'unlock';

/** Commits take from a fraction of a millisecond (memory) to the store's timeout: buckets in seconds. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the store counts itself, read when metrics are collected (the Redis near cache). */
export interface SessionStoreCounts {
  readonly nearCacheHits: number;
  readonly nearCacheMisses: number;
}

/**
 * The session instruments on one meter. Exists only while metrics are on: the request path asks
 * `runtime.metrics?.` and does nothing else when they are off. Attribute objects are built once.
 */
export class SessionMetrics {
  private readonly loads: Counter;
  private readonly commits: Counter;
  private readonly failures: Counter;
  private readonly lockWaits: Counter;
  private readonly commitDuration: Histogram;
  private readonly store: SessionMetricAttributes;
  private readonly found: SessionMetricAttributes;
  private readonly notFound: SessionMetricAttributes;
  private readonly failureAttributes = new Map<string, SessionMetricAttributes>();

  constructor(meter: SessionMeterLike, storeType: string, counts?: () => SessionStoreCounts) {
    this.store = { 'session.store': storeType };
    this.found = { ...this.store, 'session.found': true };
    this.notFound = { ...this.store, 'session.found': false };
    this.loads = meter.createCounter(SessionMetricNames.loads, {
      description: 'Sessions read from the session store.',
      unit: '{load}',
    });
    this.commits = meter.createCounter(SessionMetricNames.commits, {
      description: 'Session changes written to the session store.',
      unit: '{commit}',
    });
    this.failures = meter.createCounter(SessionMetricNames.failures, {
      description: 'Session store operations that failed, by operation and reason.',
      unit: '{failure}',
    });
    this.lockWaits = meter.createCounter(SessionMetricNames.lockWaits, {
      description: 'Waits for a session lock held by another request.',
      unit: '{wait}',
    });
    this.commitDuration = meter.createHistogram(SessionMetricNames.commitDuration, {
      description: 'Duration of session commits in the session store.',
      unit: 's',
      advice: { explicitBucketBoundaries: COMMIT_BUCKETS },
    });
    if (counts) {
      meter
        .createObservableCounter(SessionMetricNames.nearCacheHits, {
          description: 'Session loads answered by the Redis near cache.',
          unit: '{hit}',
        })
        .addCallback((result) => result.observe(counts().nearCacheHits, this.store));
      meter
        .createObservableCounter(SessionMetricNames.nearCacheMisses, {
          description: 'Session loads the Redis near cache sent to Redis.',
          unit: '{miss}',
        })
        .addCallback((result) => result.observe(counts().nearCacheMisses, this.store));
    }
  }

  /** A load the store answered; `found`: it held a session under the key. */
  loaded(found: boolean): void {
    this.loads.add(1, found ? this.found : this.notFound);
  }

  /** A commit (or the removal of an emptied session) the store applied; `startedAt` from {@link now}. */
  committed(startedAt: number): void {
    this.commits.add(1, this.store);
    this.commitDuration.record((performance.now() - startedAt) / 1000, this.store);
  }

  /** A store operation that failed. */
  failed(operation: SessionOperation, error: unknown): void {
    const type = sessionFailureType(error);
    const key = `${operation} ${type}`;
    let attributes = this.failureAttributes.get(key);
    if (!attributes) {
      attributes = { ...this.store, 'session.operation': operation, 'error.type': type };
      this.failureAttributes.set(key, attributes);
    }
    this.failures.add(1, attributes);
  }

  /** A request waited for a lock another request held. */
  lockWaited(): void {
    this.lockWaits.add(1, this.store);
  }

  /** The clock commit durations are measured with (monotonic, sub-millisecond). */
  now(): number {
    return performance.now();
  }
}
