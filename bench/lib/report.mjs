// Turns the raw runs into medians, ratios and targets; renders the markdown table and chart.
import { baselineOf, limitOf, peerOf } from './platforms.mjs';
import { median, round } from './util.mjs';

export const REFERENCE = 'express-session-redis';

/**
 * The hand-written Redis session (bench/limit.mjs): the fewest operations; every Redis ratio is read against
 * it (on Fastify against `limit-redis-fastify`, the same session there: lib/platforms.mjs `limitOf`).
 */
export const LIMIT = 'limit-redis';

/**
 * The issue's throughput targets (issue 20): `config`'s ratio on `workload` to `vs` (req/s and app CPU
 * here, instructions per request in bench/instructions.mjs) must be at least `min`. `limit`: whether the
 * limit configuration's ratio on the same workload to the same `vs` is shown beside it (the Redis targets).
 */
export const THROUGHPUT_TARGETS = [
  {
    name: 'rmw on Redis (nss-redis) vs baseline',
    workload: 'rmw',
    config: 'nss-redis',
    vs: 'baseline',
    min: 0.85,
    limit: true,
  },
  {
    name: 'rmw on Redis (nss-redis) vs express-session + connect-redis',
    workload: 'rmw',
    config: 'nss-redis',
    vs: REFERENCE,
    min: 1.3,
    limit: true,
  },
  {
    name: 'rmw with the near cache (nss-redis-near) vs baseline',
    workload: 'rmw',
    config: 'nss-redis-near',
    vs: 'baseline',
    min: 0.9,
    limit: true,
  },
  {
    name: 'read with the near cache (nss-redis-near) no slower than a plain Redis read (nss-redis)',
    workload: 'read',
    config: 'nss-redis-near',
    vs: 'nss-redis',
    min: 1,
    limit: false,
  },
  {
    name: 'read on Redis (nss-redis) vs baseline',
    workload: 'read',
    config: 'nss-redis',
    vs: 'baseline',
    min: 0.95,
    limit: true,
  },
  {
    name: 'rmw on Redis on Fastify (nss-redis-fastify) vs fastify-baseline',
    workload: 'rmw',
    config: 'nss-redis-fastify',
    vs: 'fastify-baseline',
    min: 0.85,
    limit: true,
  },
  {
    name: 'rmw on Redis on Fastify (nss-redis-fastify) vs @fastify/session + connect-redis',
    workload: 'rmw',
    config: 'nss-redis-fastify',
    vs: 'fastify-session-redis',
    min: 1.3,
    limit: true,
  },
  {
    name: 'rmw on PostgreSQL (nss-postgres) vs express-session + connect-pg-simple',
    workload: 'rmw',
    config: 'nss-postgres',
    vs: 'express-session-postgres',
    min: 1.3,
  },
  {
    name: 'untouched on Redis (nss-redis) vs baseline',
    workload: 'untouched',
    config: 'nss-redis',
    vs: 'baseline',
    min: 0.97,
    limit: true,
  },
  {
    name: 'rmw in memory (nss-memory) vs baseline',
    workload: 'rmw',
    config: 'nss-memory',
    vs: 'baseline',
    min: 0.95,
    limit: false,
  },
  {
    name: '(info) rmw with the near cache (nss-redis-near) vs express-session + connect-redis',
    workload: 'rmw',
    config: 'nss-redis-near',
    vs: REFERENCE,
    min: 1.3,
    limit: true,
  },
  {
    name: '(info) rmw on the cluster (nss-cluster) vs baseline',
    workload: 'rmw',
    config: 'nss-cluster',
    vs: 'baseline',
    min: 0.85,
    limit: true,
  },
];

/** The realistic app's cost: nss-redis-app (accessor + middleware) against nss-redis (`@Session()`). */
export const REALISTIC = { config: 'nss-redis-app', vs: 'nss-redis' };

/**
 * Median of per-repetition ratios of `config` to `vs` on `workload`: req/s (this ÷ that) and app CPU per
 * request (that ÷ this), each pair taken from the same repetition (seconds apart).
 */
export function pairedRatio(runs, workload, config, vs) {
  const rps = [];
  const cpu = [];
  for (const r of runs) {
    if (r.workload !== workload || r.config !== config) continue;
    const ref = runs.find((x) => x.workload === workload && x.config === vs && x.repetition === r.repetition);
    if (!ref) continue;
    rps.push(r.rps / ref.rps);
    cpu.push(ref.appCpuMicrosPerRequest / r.appCpuMicrosPerRequest);
  }
  if (rps.length === 0) return undefined;
  return { rps: round(median(rps), 3), cpu: round(median(cpu), 3), pairs: rps.length };
}

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
  const throughput = ({ name, workload, config, min, vs, limit }) => {
    if (!row(workload, config) || !row(workload, vs)) return;
    const own = pairedRatio(result.runs, workload, config, vs);
    if (!own) return;
    // Where the limit configuration of the platform (bench/limit.mjs) stands on the same ratio, and this
    // configuration against it directly (paired): the distance to what is physically possible here.
    const limitConfig = limit && row(workload, limitOf(config)) ? limitOf(config) : undefined;
    const atLimit = limitConfig ? pairedRatio(result.runs, workload, limitConfig, vs) : undefined;
    const toLimit = limitConfig ? pairedRatio(result.runs, workload, config, limitConfig) : undefined;
    add({
      name,
      kind: 'ratio',
      workload,
      config,
      vs,
      value: own.rps,
      goal: `>= ${min}x`,
      met: own.rps >= min,
      cpuValue: own.cpu,
      cpuMet: own.cpu >= min,
      control: result.control?.[workload]?.ratio ?? null,
      ...(atLimit ? { limitConfig, limit: atLimit } : {}),
      ...(toLimit ? { toLimit } : {}),
    });
  };
  for (const t of THROUGHPUT_TARGETS) throughput(t);
  const goals = { read: 1, rmw: 2, untouched: 0 };
  for (const config of [
    LIMIT,
    'nss-redis',
    'nss-redis-app',
    'nss-redis-near',
    'limit-redis-fastify',
    'nss-redis-fastify',
  ]) {
    if (!rt[config]) continue;
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

/**
 * The accessor path's cost: the realistic app (SessionAccessor in a service, so the request context is
 * on, and one middleware writing a request item) against nss-redis (`@Session()`), per workload.
 */
export function realisticAppCost(result) {
  const out = {};
  for (const workload of result.workloads) {
    const own = pairedRatio(result.runs, workload, REALISTIC.config, REALISTIC.vs);
    const toBaseline = pairedRatio(result.runs, workload, REALISTIC.config, 'baseline');
    if (!own) continue;
    const a = result.summary[workload][REALISTIC.config].appCpuMicrosPerRequest;
    const b = result.summary[workload][REALISTIC.vs].appCpuMicrosPerRequest;
    out[workload] = { vsNssRedis: own, vsBaseline: toBaseline, appCpuMicrosPerRequestAdded: round(a - b, 0) };
  }
  return out;
}

export function formatRealisticAppCost(cost, node) {
  const parts = Object.entries(cost ?? {}).map(
    ([w, c]) =>
      `${w} ${c.vsNssRedis.rps.toFixed(2)}x req/s, ${c.vsNssRedis.cpu.toFixed(2)}x app CPU ` +
      `(${c.appCpuMicrosPerRequestAdded >= 0 ? '+' : ''}${c.appCpuMicrosPerRequestAdded} µs/req; x baseline ${c.vsBaseline?.rps.toFixed(2) ?? '—'})`,
  );
  return parts.length
    ? `The accessor path on Node ${node} (${REALISTIC.config} ÷ ${REALISTIC.vs}, paired per repetition; medians of medians for µs): ${parts.join('; ')}.`
    : '';
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
        `${t.control !== null && t.control !== undefined ? `; A/A control ${number(t.control)}x` : ''})` +
        (t.limit
          ? `; the limit (${t.limitConfig}) ${t.limit.rps.toFixed(3)}x (app CPU ${t.limit.cpu.toFixed(3)}x), ` +
            `${t.config} ÷ limit ${t.toLimit.rps.toFixed(3)}x (app CPU ${t.toLimit.cpu.toFixed(3)}x)`
          : '');
    }
    return { state, line: `${state.padEnd(12)} ${t.name}: ${value}; target ${t.goal}` };
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
  const realistic = formatRealisticAppCost(result.realisticApp, machine.node);
  if (realistic) {
    lines.push(realistic);
    lines.push('');
  }
  lines.push(`Targets (issue 20) on Node ${machine.node}:`);
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

/**
 * Replaces the text between the results markers of Node `major` in `readme` (`<!-- results:node24:start -->`
 * ... `<!-- results:node24:end -->`): each runtime has its own section. Undefined when there is none.
 */
export function replaceResults(readme, section, major) {
  const start = `<!-- results:node${major}:start -->`;
  const end = `<!-- results:node${major}:end -->`;
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) return undefined;
  return `${readme.slice(0, i + start.length)}\n\n${section}\n\n${readme.slice(j)}`;
}
