// A tiny .cpuprofile reader: self time per function (and per package/area) over a time window.
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url).href; // file:///.../ of the repository

/** A frame's URL relative to the repository (file URLs outside it as paths). */
export function shortUrl(url) {
  if (!url) return '';
  return url.startsWith(ROOT) ? url.slice(ROOT.length) : url.replace(/^file:\/\//, '');
}

/** Where a frame's code lives: the library, a package, Node internals, or a V8 pseudo-frame. */
export function areaOf(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native/V8 builtins)';
  if (url.startsWith('node:')) return 'node: internals';
  const short = shortUrl(url);
  if (short.startsWith('libs/session-state/')) return 'nest-session-state';
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(short);
  if (match) return match[1];
  if (short.startsWith('bench/')) return 'bench app';
  return short;
}

/**
 * Reads a .cpuprofile and returns self time per function and per area for the samples taken within
 * [fromMicros, toMicros] (monotonic microseconds, as process.hrtime; both optional).
 */
export function summarizeProfile(path, { fromMicros = -Infinity, toMicros = Infinity } = {}) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const { samples, timeDeltas } = profile;
  const timestamps = new Array(samples.length);
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    timestamps[i] = t;
  }
  const functions = new Map();
  const areas = new Map();
  const inclusiveFunctions = new Map();
  const inclusiveAreas = new Map();
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    if (timestamps[i] < fromMicros || timestamps[i] > toMicros) continue;
    // A sample stands for the time until the next one.
    const weight = i + 1 < samples.length ? timestamps[i + 1] - timestamps[i] : 0;
    const node = byId.get(samples[i]);
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const entry = functions.get(key) ?? { name, where, area: areaOf(url, name), micros: 0 };
    entry.micros += weight;
    functions.set(key, entry);
    const area = areaOf(url, name);
    areas.set(area, (areas.get(area) ?? 0) + weight);
    total += weight;
    // Inclusive ("total") time: the sample counts once for every function and area on its stack.
    const seenFunctions = new Set();
    const seenAreas = new Set();
    for (let id = samples[i]; id !== undefined; id = parentOf.get(id)) {
      const frame = byId.get(id).callFrame;
      const frameName = frame.functionName || '(anonymous)';
      const frameArea = areaOf(frame.url, frameName);
      seenAreas.add(frameArea);
      if (frameArea !== 'nest-session-state') continue;
      const frameKey = `${frameName} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      if (seenFunctions.has(frameKey)) continue;
      seenFunctions.add(frameKey);
      const entry = inclusiveFunctions.get(frameKey) ?? {
        name: frameName,
        where: `${shortUrl(frame.url)}:${frame.lineNumber + 1}`,
        micros: 0,
      };
      entry.micros += weight;
      inclusiveFunctions.set(frameKey, entry);
    }
    for (const a of seenAreas) inclusiveAreas.set(a, (inclusiveAreas.get(a) ?? 0) + weight);
  }
  const sortDesc = (a, b) => b.micros - a.micros;
  return {
    totalMicros: total,
    functions: [...functions.values()].sort(sortDesc),
    areas: [...areas.entries()].map(([area, micros]) => ({ area, micros })).sort(sortDesc),
    /** Library functions by inclusive time (their callees included: ioredis, crypto, promises...). */
    libraryInclusive: [...inclusiveFunctions.values()].sort(sortDesc),
    /** Share of samples whose stack holds the area at all. */
    areasInclusive: [...inclusiveAreas.entries()].map(([area, micros]) => ({ area, micros })).sort(sortDesc),
  };
}

/**
 * The summary as text: the top `n` functions by self time, then self time per area. With
 * `cpuMicrosPerRequest` (the app's CPU time per request over the window) each line also shows its share
 * of that in microseconds: the samples' share of the busy (non-idle) time times the CPU per request.
 * Samples are taken on wall-clock ticks, so absolute ms include time the thread waited for a core; the
 * per-request CPU figure does not, and is comparable across apps measured under similar load.
 */
export function formatProfile(summary, n = 25, cpuMicrosPerRequest = 0) {
  const pct = (micros) => ((100 * micros) / (summary.totalMicros || 1)).toFixed(1).padStart(5);
  const ms = (micros) => (micros / 1000).toFixed(0).padStart(7);
  const idle = summary.areas.find((a) => a.area === '(idle)')?.micros ?? 0;
  const busy = summary.totalMicros - idle;
  const scaled = cpuMicrosPerRequest > 0 && busy > 0;
  const perRequest = (micros, name = '') =>
    scaled && name !== '(idle)'
      ? ((micros / busy) * cpuMicrosPerRequest).toFixed(1).padStart(7)
      : ' '.repeat(7);
  const lines = [
    `Top ${n} functions by self time (of ${(summary.totalMicros / 1e6).toFixed(2)} s sampled` +
      `${scaled ? `; app CPU ${cpuMicrosPerRequest.toFixed(0)} µs per request` : ''}):`,
  ];
  lines.push(`  ${'self %'.padStart(6)} ${'ms'.padStart(7)} ${scaled ? ' µs/req' : ''}  function (where)`);
  for (const f of summary.functions.slice(0, n)) {
    lines.push(
      `  ${pct(f.micros)}% ${ms(f.micros)} ${perRequest(f.micros, f.name)}  ${f.name}${f.where ? `  (${f.where})` : ''}`,
    );
  }
  lines.push('', 'Self time by area:');
  for (const a of summary.areas.slice(0, 15)) {
    lines.push(`  ${pct(a.micros)}% ${ms(a.micros)} ${perRequest(a.micros, a.area)}  ${a.area}`);
  }
  lines.push(
    '',
    'Samples whose stack holds code of (inclusive; a sample counts for every area on its stack):',
  );
  for (const a of summary.areasInclusive.slice(0, 12)) {
    lines.push(`  ${pct(a.micros)}% ${ms(a.micros)} ${perRequest(a.micros, a.area)}  ${a.area}`);
  }
  lines.push('', 'nest-session-state functions by inclusive time (callees included):');
  for (const f of summary.libraryInclusive.slice(0, 15)) {
    lines.push(`  ${pct(f.micros)}% ${ms(f.micros)} ${perRequest(f.micros)}  ${f.name}  (${f.where})`);
  }
  return lines.join('\n');
}
