// `--reference DIR` (bench/run.mjs): a second build of the library, e.g. an older commit, measured in the same
// run as this workspace's build, its rows (`<config>-ref`) interleaved with theirs slice by slice. Run-to-run
// noise on this 2-core machine (±5% between two runs of the same code) is larger than the differences such
// an A/B looks for; within one run both builds share every slice's conditions, so the paired per-repetition
// ratios below are what to read (bench/README.md, "Against an earlier build").
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REFERENCE_SUFFIX } from './platforms.mjs';

/**
 * Copies the reference build into `<bench>/.reference/node_modules/nest-session-state`, so that its own imports
 * (@nestjs/*, ioredis, ...) resolve to this workspace's packages: one Nest in each app, as with the workspace
 * build. `dir` is a checkout (its libs/session-state is used) or the library's package folder; it must have
 * been built (`npm run build` there).
 */
export function prepareReference(dir, benchDir) {
  const root = resolve(dir);
  const library = existsSync(join(root, 'libs/session-state/package.json'))
    ? join(root, 'libs/session-state')
    : root;
  const manifest = join(library, 'package.json');
  const name = existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).name : undefined;
  if (name !== 'nest-session-state' || !existsSync(join(library, 'dist/index.js'))) {
    throw new Error(
      `--reference ${dir}: no built nest-session-state there (expected package.json and dist/index.js in ` +
        `${library}); pass a checkout or the library's folder, after running npm run build in it`,
    );
  }
  const target = join(benchDir, '.reference/node_modules/nest-session-state');
  rmSync(target, { recursive: true, force: true });
  cpSync(manifest, join(target, 'package.json'));
  cpSync(join(library, 'dist'), join(target, 'dist'), { recursive: true });
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: library, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return {
    source: library,
    commit,
    version: JSON.parse(readFileSync(manifest, 'utf8')).version,
    importPath: pathToFileURL(join(target, 'dist/index.js')).href,
  };
}

/** The configurations with a reference row: those that run the library (nss-*). */
export const hasReferenceRow = (config) => config.startsWith('nss-') && !config.endsWith(REFERENCE_SUFFIX);

/** `configs` with `<config>-ref` after each configuration that runs the library. */
export function withReferenceRows(configs) {
  return configs.flatMap((c) => (hasReferenceRow(c) ? [c, `${c}${REFERENCE_SUFFIX}`] : [c]));
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round3 = (x) => Math.round(x * 1000) / 1000;

/**
 * This build against the reference, per workload and configuration: the median over repetitions of the
 * ratio within each repetition (req/s of this build ÷ req/s of the reference; app CPU per request of the
 * reference ÷ of this build, so > 1 is faster both ways), with the lowest and highest.
 */
export function compareWithReference(runs, configs, workloads) {
  const out = {};
  for (const workload of workloads) {
    out[workload] = {};
    for (const config of configs.filter((c) => configs.includes(`${c}${REFERENCE_SUFFIX}`))) {
      const rps = [];
      const cpu = [];
      for (const run of runs) {
        if (run.workload !== workload || run.config !== config) continue;
        const twin = runs.find(
          (r) =>
            r.workload === workload &&
            r.repetition === run.repetition &&
            r.config === `${config}${REFERENCE_SUFFIX}`,
        );
        if (!twin) continue;
        rps.push(run.rps / twin.rps);
        cpu.push(twin.appCpuMicrosPerRequest / run.appCpuMicrosPerRequest);
      }
      if (rps.length === 0) continue;
      out[workload][config] = {
        rps: round3(median(rps)),
        rpsMin: round3(Math.min(...rps)),
        rpsMax: round3(Math.max(...rps)),
        cpu: round3(median(cpu)),
        cpuMin: round3(Math.min(...cpu)),
        cpuMax: round3(Math.max(...cpu)),
        repetitions: rps.length,
      };
    }
  }
  return out;
}

/**
 * One line per workload and configuration, for the run's log, then the A/A control's (`control`: bench/run.mjs's
 * `baseline-2` against `baseline` per workload), the spread to read them against.
 */
export function formatReferenceComparison(reference, control = {}) {
  const line = (workload, label, rps, min, max, cpu) =>
    `  ${workload.padEnd(9)} ${label.padEnd(22)} req/s ${rps.toFixed(3)}x (${min.toFixed(2)}-${max.toFixed(2)})  app CPU ${cpu.toFixed(3)}x`;
  const lines = [
    `Against the reference build ${reference.commit} (${reference.source}), paired per repetition:`,
  ];
  for (const [workload, rows] of Object.entries(reference.comparison)) {
    for (const [config, r] of Object.entries(rows))
      lines.push(line(workload, config, r.rps, r.rpsMin, r.rpsMax, r.cpu));
  }
  for (const [workload, c] of Object.entries(control))
    lines.push(
      `${line(workload, 'A/A control', c.ratio, c.min, c.max, c.cpuRatio)}: baseline-2 against baseline, two processes of the same app`,
    );
  return lines;
}
