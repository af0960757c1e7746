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

/** bench/lib/profile.mjs's name for this library's area. */
const LIBRARY_AREA = 'nest-session-state';

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
  const library = {};
  let total = 0;
  let underLibrary = 0;
  const visit = (node, callerArea) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const area = areaOf(url, name);
    // Node's and V8's frames work for the package that called them.
    const owner = area === 'node: internals' || area.startsWith('(') ? callerArea : area;
    if (node.selfSize > 0) {
      const key = url ? `${name} ${shortUrl(url)}:${lineNumber + 1}` : name;
      areas[area] = (areas[area] ?? 0) + node.selfSize;
      functions[key] = (functions[key] ?? 0) + node.selfSize;
      if (area === LIBRARY_AREA) library[key] = (library[key] ?? 0) + node.selfSize;
      if (owner === LIBRARY_AREA) underLibrary += node.selfSize;
      total += node.selfSize;
    }
    for (const child of node.children) visit(child, owner);
  };
  visit(profile.head, undefined);
  return { total, areas, functions, library, underLibrary };
}

/**
 * Bytes per request, rounded: the total, every area, the `top` functions that allocate most, every
 * function of the library (what a change to it is compared by, function by function), and `underLibrary`:
 * the library's bytes with those of the Node and V8 functions it called (up to the next package's frame).
 */
export function allocationsPerRequest(
  { total, areas, functions, library, underLibrary },
  requests,
  top = 15,
) {
  const per = (bytes) => Math.round(bytes / requests);
  const sorted = (record, count = Infinity) =>
    Object.fromEntries(
      Object.entries(record)
        .sort((a, b) => b[1] - a[1])
        .slice(0, count)
        .map(([k, v]) => [k, per(v)]),
    );
  return {
    bytes: per(total),
    areas: sorted(areas),
    functions: sorted(functions, top),
    library: sorted(library),
    underLibrary: per(underLibrary),
  };
}
