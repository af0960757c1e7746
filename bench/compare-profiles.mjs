// Compares two `--profile` summaries (bench/profiles/*.summary.json) per request:
//   node bench/compare-profiles.mjs <base.summary.json> <other.summary.json> [n]
// Prints the areas and functions whose CPU time per request grew most from base to other.
import { readFileSync } from 'node:fs';

const [baseFile, otherFile, count = '25'] = process.argv.slice(2);
if (!baseFile || !otherFile) {
  process.stderr.write(
    'usage: node bench/compare-profiles.mjs <base.summary.json> <other.summary.json> [n]\n',
  );
  process.exit(2);
}
const load = (file) => {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const idle = s.areas.find((a) => a.area === '(idle)')?.micros ?? 0;
  const scale = s.cpuMicrosPerRequest / (s.totalMicros - idle); // µs of CPU per request per sampled µs
  return { s, scale };
};
const base = load(baseFile);
const other = load(otherFile);

function diff(key, list) {
  const rows = new Map();
  for (const [which, { s, scale }] of [
    ['base', base],
    ['other', other],
  ]) {
    for (const item of s[list]) {
      const k = key(item);
      const row = rows.get(k) ?? { k, base: 0, other: 0 };
      row[which] += item.micros * scale;
      rows.set(k, row);
    }
  }
  return [...rows.values()]
    .filter((r) => r.k !== '(idle)')
    .sort((a, b) => b.other - b.base - (a.other - a.base));
}

const f = (v) => v.toFixed(1).padStart(7);
const n = Number(count);
process.stdout.write(
  `CPU per request: ${base.s.config}:${base.s.workload} ${base.s.cpuMicrosPerRequest.toFixed(0)} µs, ` +
    `${other.s.config}:${other.s.workload} ${other.s.cpuMicrosPerRequest.toFixed(0)} µs\n\n` +
    `Self time by area, µs per request (base, other, difference):\n`,
);
for (const r of diff((a) => a.area, 'areas').slice(0, 15)) {
  process.stdout.write(`  ${f(r.base)} ${f(r.other)} ${f(r.other - r.base)}  ${r.k}\n`);
}
process.stdout.write(`\nFunctions whose self time per request grew most (base, other, difference):\n`);
for (const r of diff((x) => `${x.name}  ${x.where}`, 'functions').slice(0, n)) {
  process.stdout.write(`  ${f(r.base)} ${f(r.other)} ${f(r.other - r.base)}  ${r.k}\n`);
}
