// Turns the raw runs into medians, ratios and targets; renders the markdown table and chart.
import { baselineOf, peerOf } from './platforms.mjs';
import { median, round } from './util.mjs';

export const REFERENCE = 'express-session-redis';

/**
 * The issue's throughput targets: `config`'s ratio on `workload` to `vs` (req/s here, instructions per
 * request in bench/instructions.mjs) must be at least `min`.
 */
export const THROUGHPUT_TARGETS = [
  {
    name: 'rmw on Redis (nss-redis) vs baseline',
    workload: 'rmw',
    config: 'nss-redis',
    vs: 'baseline',
    min: 0.85,
  },
  {
    name: 'rmw on Redis (nss-redis) vs express-session + connect-redis',
    workload: 'rmw',
    config: 'nss-redis',
    vs: REFERENCE,
    min: 1.3,
  },
  {
    name: 'rmw on Redis with the near cache (nss-redis-near) vs baseline',
    workload: 'rmw',
    config: 'nss-redis-near',
    vs: 'baseline',
    min: 0.85,
  },
  {
    name: 'rmw on Redis with the near cache (nss-redis-near) vs express-session + connect-redis',
    workload: 'rmw',
    config: 'nss-redis-near',
    vs: REFERENCE,
    min: 1.3,
  },
  {
    name: '(info) rmw on the cluster (nss-cluster) vs baseline',
    workload: 'rmw',
    config: 'nss-cluster',
    vs: 'baseline',
    min: 0.85,
  },
  {
    name: 'rmw in memory (nss-memory) vs baseline',
    workload: 'rmw',
    config: 'nss-memory',
    vs: 'baseline',
    min: 0.95,
  },
  {
    name: 'rmw on Redis on Fastify (nss-redis-fastify) vs fastify-baseline',
    workload: 'rmw',
    config: 'nss-redis-fastify',
    vs: 'fastify-baseline',
    min: 0.85,
  },
  {
    name: 'rmw on Redis on Fastify (nss-redis-fastify) vs @fastify/session + connect-redis',
    workload: 'rmw',
    config: 'nss-redis-fastify',
    vs: 'fastify-session-redis',
    min: 1.3,
  },
  {
    name: 'untouched on Redis (nss-redis) vs baseline',
    workload: 'untouched',
    config: 'nss-redis',
    vs: 'baseline',
    min: 0.97,
  },
];

/**
 * Per workload and configuration: the median over repetitions of req/s and latency, and the median of
 * the per-repetition ratios to the baseline and to express-session + connect-redis (paired within one
 * repetition, so slow drifts of the machine cancel out). Fastify rows are compared with their platform's
 * pair instead, fastify-baseline and fastify-session-redis (lib/platforms.mjs), under the same field names.
 */
export function summarize(runs, configs, workloads) {
  const summary = {};
  for (const workload of workloads) {
    summary[workload] = {};
    const at = (config, repetition) =>
      runs.find((r) => r.workload === workload && r.config === config && r.repetition === repetition);
    for (const config of configs) {
      const own = runs.filter((r) => r.workload === workload && r.config === config);
      if (own.length === 0) continue;
      const ratios = (reference) =>
        own
          .map((r) => {
            const ref = at(reference, r.repetition);
            return ref ? r.rps / ref.rps : NaN;
          })
          .filter(Number.isFinite);
      const commandNames = new Set(own.flatMap((r) => Object.keys(r.commands ?? {})));
      const commandsPerRequest = {};
      for (const name of [...commandNames].sort()) {
        commandsPerRequest[name] = round(
          median(own.map((r) => (r.commands?.[name] ?? 0) / (r.handled ?? r.requests))),
          3,
        );
      }
      const hasCommands = own.some((r) => r.commands);
      // The app's CPU time per request, paired with the baseline's in the same repetition: less
      // sensitive than req/s to other processes taking CPU time away (it counts work, not waiting).
      const cpuToBaseline = own
        .map((r) => {
          const ref = at(baselineOf(config), r.repetition);
          return ref ? ref.appCpuMicrosPerRequest / r.appCpuMicrosPerRequest : NaN;
        })
        .filter(Number.isFinite);
      const redisCpu = own.map((r) => r.redisCpuMicrosPerRequest).filter((v) => v !== undefined);
      const rpsValues = own.map((r) => r.rps);
      const toBaseline = ratios(baselineOf(config));
      const toReference = ratios(peerOf(config));
      summary[workload][config] = {
        rps: round(median(rpsValues), 0),
        rpsMin: round(Math.min(...rpsValues), 0),
        rpsMax: round(Math.max(...rpsValues), 0),
        ratioToBaseline: round(median(toBaseline), 3),
        ratioToBaselineMin: round(Math.min(...toBaseline), 3),
        ratioToBaselineMax: round(Math.max(...toBaseline), 3),
        ratioToExpressSessionRedis: round(median(toReference), 3),
        appCpuMicrosPerRequest: round(median(own.map((r) => r.appCpuMicrosPerRequest)), 0),
        cpuRatioToBaseline: round(median(cpuToBaseline), 3),
        ...(redisCpu.length ? { redisCpuMicrosPerRequest: round(median(redisCpu), 1) } : {}),
        p50Ms: round(median(own.map((r) => r.p50)), 2),
        p99Ms: round(median(own.map((r) => r.p99)), 2),
        repetitions: own.length,
        ...(hasCommands
          ? {
              commandsPerRequest,
              commandsPerRequestTotal: round(
                median(
                  own.map(
                    (r) =>
                      Object.values(r.commands ?? {}).reduce((a, b) => a + b, 0) / (r.handled ?? r.requests),
                  ),
                ),
                3,
              ),
            }
          : {}),
      };
    }
  }
  return summary;
}

/**
 * The issue's targets, evaluated on a result. Throughput targets are judged on the req/s ratio (the
 * spec); the app-CPU ratio and the A/A control of the same workload are attached, since on a busy
 * machine the req/s ratio moves more than the CPU ratio.
 */
export function evaluateTargets(result) {
  const s = result.summary;
  const rt = result.roundTrips ?? {};
  const targets = [];
  const add = (target) =>
    targets.push({ ...target, met: target.value === null || target.value === undefined ? null : target.met });
  const row = (workload, config) => s[workload]?.[config];
  const throughput = (name, workload, config, min, vs = 'baseline') => {
    const r = row(workload, config);
    const ref = row(workload, vs);
    if (!r || !ref) return;
    const value = vs === baselineOf(config) ? r.ratioToBaseline : r.ratioToExpressSessionRedis;
    const cpuValue =
      vs === baselineOf(config)
        ? r.cpuRatioToBaseline
        : round(ref.appCpuMicrosPerRequest / r.appCpuMicrosPerRequest, 3);
    add({
      name,
      kind: 'ratio',
      value,
      goal: `>= ${min}x`,
      met: value >= min,
      cpuValue,
      cpuMet: cpuValue >= min,
      control: result.control?.[workload]?.ratio ?? null,
    });
  };
  for (const t of THROUGHPUT_TARGETS) throughput(t.name, t.workload, t.config, t.min, t.vs);
  const goals = { read: 1, rmw: 2, untouched: 0 };
  for (const config of ['nss-redis', 'nss-redis-near']) {
    for (const [workload, goal] of Object.entries(goals)) {
      const value = rt[config]?.[workload]?.perRequest ?? null;
      // A few requests may legitimately differ (e.g. a slide that fell out of the window).
      add({
        name: `Redis round trips per ${workload} request (${config})`,
        value,
        goal: `<= ${goal}`,
        met: value <= goal + 0.01,
      });
    }
  }
  const bytes = result.redisMemory?.nss?.bytes ?? null;
  add({
    name: 'bytes in Redis for a one-counter session (MEMORY USAGE)',
    value: bytes,
    goal: '<= 120',
    met: bytes <= 120,
  });
  return targets;
}

/** The warm-up, as the run's header says it: rounds until each app's JIT settled. */
function warmupText(warmup, settings) {
  if (!warmup) return '';
  const counts = Object.values(warmup.rounds);
  const range = `${Math.min(...counts)}–${Math.max(...counts)}`;
  return (
    `; warm-up in rounds of ${settings.warmupSeconds} s per workload until a round without JIT events ` +
    `(at most ${settings.warmupRounds}): ${range} rounds` +
    (warmup.unsettled.length
      ? ` (JIT still active after ${settings.warmupRounds}: ${warmup.unsettled.join(', ')})`
      : '')
  );
}

const fmt = (value, digits = 2) =>
  value === null || value === undefined ? '—' : Number(value).toFixed(digits);

/** Unicode bar of `value` where 1.0 is `width` cells. */
function bar(value, width = 40) {
  const eighths = Math.max(0, Math.round(value * width * 8));
  const full = Math.floor(eighths / 8);
  const rest = eighths % 8;
  return '█'.repeat(full) + (rest ? '▏▎▍▌▋▊▉'[rest - 1] : '');
}

export function formatTargets(targets) {
  return targets.map((t) => {
    const state = t.met === null ? 'NOT MEASURED' : t.met ? 'MET' : 'NOT MET';
    const number = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : '—');
    let value = number(t.value);
    if (t.kind === 'ratio') {
      value =
        // Three decimals: 0.846 printed as 0.85x next to NOT MET read as a contradiction.
        `${t.value.toFixed(3)}x req/s (by app CPU ${t.cpuValue.toFixed(3)}x: ${t.cpuMet ? 'met' : 'not met'}` +
        `${t.control !== null && t.control !== undefined ? `; A/A control ${number(t.control)}x` : ''})`;
    }
    return { state, line: `${state.padEnd(12)} ${t.name}: ${value}, target ${t.goal}` };
  });
}

/** The results section of bench/README.md (between the markers). */
export function renderMarkdown(result) {
  const { settings, machine, summary, configs, workloads } = result;
  const lines = [];
  lines.push(
    `Run of ${result.startedAt} (${settings.mode}; ${settings.repetitions} repetitions x ${settings.durationSeconds} s per ` +
      `configuration and workload${settings.leadInSeconds ? `, each after ${settings.leadInSeconds} s of unmeasured load` : ''}, ${settings.connections} connections, ${settings.sessions} sessions${warmupText(result.warmup, settings)}; took ` +
      `${Math.round(result.elapsedSeconds)} s; app processes run with ` +
      `${settings.appNodeFlags?.length ? settings.appNodeFlags.join(' ') : 'default Node flags'}). Machine: ${machine.cpuModel}, ${machine.cores} cores shared by apps, ` +
      `load generator and Redis; load average at start ${machine.loadAverageAtStart.join(' / ')}. Node ${machine.node}, ` +
      `Redis ${machine.redis}, nest-session-state ${machine.packages['nest-session-state']} ` +
      `(commit ${machine.gitCommit}${machine.gitDirty ? ', uncommitted changes' : ''}). JSON: \`bench/results/${result.file}\`.`,
  );
  lines.push('');
  lines.push(
    'Medians over repetitions. Ratios are medians of per-repetition ratios (same repetition, same workload). ' +
      '"app CPU" is the app process\'s CPU time per request; its ratio (baseline CPU ÷ this CPU) is the steadier ' +
      'figure when other processes compete for the cores. Read absolute req/s as "on this busy 2-core machine". ' +
      'Fastify rows are compared with `fastify-baseline` and `fastify-session-redis` in the "x baseline" and ' +
      '"x express-session-redis" columns (the same platform\'s baseline and Redis peer).',
  );
  lines.push('');
  for (const workload of workloads) {
    lines.push(`#### ${workload}: ${WORKLOAD_TEXT[workload]} (Node ${machine.node})`);
    lines.push('');
    lines.push(
      '| configuration | req/s | x baseline (min–max) | x express-session-redis | p50 ms | p99 ms | app CPU µs/req (x baseline) | Redis CPU µs/req | Redis commands / req | round trips / req |',
    );
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
    for (const config of configs) {
      const row = summary[workload]?.[config];
      if (!row) continue;
      const commands = row.commandsPerRequest
        ? `${fmt(row.commandsPerRequestTotal, 2)} (${
            Object.entries(row.commandsPerRequest)
              .filter(([, v]) => v >= 0.005)
              .map(([k, v]) => `${k} ${fmt(v, 2)}`)
              .join(', ') || 'none'
          })`
        : '—';
      const trips = result.roundTrips?.[config]?.[workload];
      lines.push(
        `| ${config} | ${fmt(row.rps, 0)} | ${fmt(row.ratioToBaseline)} (${fmt(row.ratioToBaselineMin)}–${fmt(
          row.ratioToBaselineMax,
        )}) | ${fmt(row.ratioToExpressSessionRedis)} | ${fmt(row.p50Ms)} | ${fmt(row.p99Ms)} | ${fmt(
          row.appCpuMicrosPerRequest,
          0,
        )} (${fmt(row.cpuRatioToBaseline)}) | ${fmt(row.redisCpuMicrosPerRequest, 0)} | ${commands} | ${
          trips ? fmt(trips.perRequest, 2) : '—'
        } |`,
      );
    }
    lines.push('');
  }
  lines.push(
    `Requests per second relative to the baseline on Node ${machine.node} (median ratio; \`│\` marks 1.0):`,
  );
  lines.push('');
  lines.push('```text');
  for (const workload of workloads) {
    lines.push(`${workload}`);
    for (const config of configs) {
      const row = summary[workload]?.[config];
      if (!row) continue;
      const b = bar(row.ratioToBaseline ?? 0);
      const marked = b.length >= 40 ? b.slice(0, 40) + '│' + b.slice(41) : b.padEnd(40, ' ') + '│';
      lines.push(`  ${config.padEnd(22)} ${marked} ${fmt(row.ratioToBaseline)}`);
    }
  }
  lines.push('```');
  lines.push('');
  lines.push(`Memory per session holding one counter (Node ${machine.node}):`);
  lines.push('');
  lines.push('| where | nest-session-state | express-session |');
  lines.push('| --- | ---: | ---: |');
  const rm = result.redisMemory ?? {};
  lines.push(
    `| Redis, \`MEMORY USAGE\` (median of ${rm.nss?.sampled ?? '?'} keys) | ${rm.nss?.bytes ?? '—'} B (\`${rm.nss?.keyShape ?? ''}\`) | ${
      rm.connectRedis?.bytes ?? '—'
    } B (\`${rm.connectRedis?.keyShape ?? ''}\`) |`,
  );
  const heap = result.heap ?? {};
  lines.push(
    `| process heap + external, ${heap.nss?.sessions ?? '?'} sessions in the memory store | ${fmt(
      heap.nss?.bytesPerSession,
      0,
    )} B | ${fmt(heap.expressSession?.bytesPerSession, 0)} B |`,
  );
  lines.push('');
  if (result.control) {
    lines.push(
      `A/A control (a second, identical baseline process): ${Object.entries(result.control)
        .map(
          ([w, v]) =>
            `${w} ${fmt(v.ratio)} (min–max ${fmt(v.min)}–${fmt(v.max)}; by app CPU ${fmt(v.cpuRatio)})`,
        )
        .join(', ')}. Differences of this size are noise.`,
    );
    lines.push('');
  }
  lines.push(`Targets (issue 9) on Node ${machine.node}:`);
  lines.push('');
  for (const { state, line } of formatTargets(result.targets)) {
    lines.push(`- **${state}** ${line.slice(state.length).trim()}`);
  }
  return lines.join('\n');
}

export const WORKLOAD_TEXT = {
  rmw: 'read-modify-write of a per-session counter',
  read: 'read the counter',
  untouched: 'a route that never touches the session (cookie sent)',
};

/** Replaces the text between the results markers of `readme`. */
export function replaceResults(readme, section) {
  const start = '<!-- results:start -->';
  const end = '<!-- results:end -->';
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i)
    throw new Error('bench/README.md has no <!-- results:start --> ... <!-- results:end --> markers');
  return `${readme.slice(0, i + start.length)}\n\n${section}\n\n${readme.slice(j)}`;
}
