// Bytes allocated per request, from V8's sampling heap profiler (the inspector's HeapProfiler), run inside
// the benchmark app over a fixed number of requests: what allocation and garbage collection cost, which a
// timed run on this 2-core machine cannot tell apart from noise and callgrind counts only in part (maps and
// property arrays V8 builds at run time). See bench/README.md, "Allocation per request".
import { Session } from 'node:inspector/promises';
import { areaOf, shortUrl } from './profile.mjs';

/**
 * Bytes between two samples on average. The profiler weighs each sample by its probability, so totals are
 * estimates of every byte allocated; 1 KiB keeps the estimate of a ~50 KiB request within ~1% over a
 * few thousand requests, at a cost the counts do not depend on.
 */
const SAMPLING_INTERVAL = 1024;

/**
 * The app's side: starts and stops sampling in this process. Objects collected since are counted too
 * (`includeObjectsCollectedBy...`): a request's garbage is what is being measured.
 */
export class AllocationSampler {
  #session;

  async start() {
    if (!this.#session) {
      this.#session = new Session();
      this.#session.connect();
      await this.#session.post('HeapProfiler.enable');
    }
    await this.#session.post('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops sampling; bytes by area and by allocating function (see {@link summarizeAllocations}). */
  async stop() {
    const { profile } = await this.#session.post('HeapProfiler.stopSampling');
    return summarizeAllocations(profile);
  }
}

/**
 * Bytes by area (the library, a package, Node internals, V8: bench/lib/profile.mjs's areas) and by the
 * function that allocated them (the top of the stack; an inlined function's bytes may be counted to its
 * caller), from a sampling heap profile.
 */
export function summarizeAllocations(profile) {
  const areas = {};
  const functions = {};
  let total = 0;
  const visit = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    if (node.selfSize > 0) {
      const name = functionName || '(anonymous)';
      const area = areaOf(url, name);
      const key = url ? `${name} ${shortUrl(url)}:${lineNumber + 1}` : name;
      areas[area] = (areas[area] ?? 0) + node.selfSize;
      functions[key] = (functions[key] ?? 0) + node.selfSize;
      total += node.selfSize;
    }
    for (const child of node.children) visit(child);
  };
  visit(profile.head);
  return { total, areas, functions };
}

/** Bytes per request: the total, every area, and the `top` functions that allocate most, rounded. */
export function allocationsPerRequest({ total, areas, functions }, requests, top = 15) {
  const per = (bytes) => Math.round(bytes / requests);
  const sorted = (record, count = Infinity) =>
    Object.fromEntries(
      Object.entries(record)
        .sort((a, b) => b[1] - a[1])
        .slice(0, count)
        .map(([k, v]) => [k, per(v)]),
    );
  return { bytes: per(total), areas: sorted(areas), functions: sorted(functions, top) };
}
