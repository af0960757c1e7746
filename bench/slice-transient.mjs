#!/usr/bin/env node
// Why the timed slices run the apps with --no-memory-reducer: app CPU per request in the four quarters
// of a 1 s slice of /rmw that follows an idle gap, as the interleaved slices of `npm run bench` do.
//
//   node bench/slice-transient.mjs [--gap 5000] [--repetitions 6] [--node-flags "--no-memory-reducer"] baseline nss-memory
//
// In-process configurations only (baseline, baseline-2, nss-memory, express-session-memory): no Redis is started.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSessions, fakeCookies, runLoad, sleep } from './lib/load.mjs';
import { median } from './lib/util.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const { values: cli, positionals: configs } = parseArgs({
  allowPositionals: true,
  options: {
    gap: { type: 'string', default: '5000' },
    repetitions: { type: 'string', default: '6' },
    'node-flags': { type: 'string', default: '' },
  },
});
const secret = randomBytes(32).toString('base64url');
const execArgv = cli['node-flags'].split(' ').filter(Boolean);

function start(config) {
  const child = fork(join(BENCH, 'server.mjs'), [config, JSON.stringify({ secret })], {
    cwd: join(BENCH, '..'),
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 0;
  const pending = new Map();
  const request = (type) =>
    new Promise((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      child.send({ id, type });
    });
  return new Promise((resolve) =>
    child.on('message', (message) => {
      if (pending.has(message?.id)) {
        pending.get(message.id)(message);
        pending.delete(message.id);
      } else if (message?.type === 'ready') {
        resolve({ config, child, request, url: `http://127.0.0.1:${message.port}` });
      }
    }),
  );
}

/** CPU time (µs) and requests so far, once every request received was answered. */
async function counters(server) {
  for (;;) {
    const { cpu, received, inFlight } = await server.request('counters');
    if (inFlight === 0) return { cpu: cpu.user + cpu.system, received };
    await sleep(5);
  }
}

const servers = await Promise.all(configs.map(start));
const cookies = {};
for (const s of servers)
  cookies[s.config] = s.config.startsWith('baseline') ? fakeCookies(1000) : await createSessions(s.url, 1000);
const load = (s, duration) =>
  runLoad({ url: s.url, path: '/rmw', cookies: cookies[s.config], connections: 16, duration });
for (const s of servers) await load(s, 2); // JIT warm-up

const quarters = Object.fromEntries(configs.map((c) => [c, [[], [], [], []]]));
for (let repetition = 0; repetition < Number(cli.repetitions); repetition++) {
  for (const s of servers) {
    await sleep(Number(cli.gap));
    for (let q = 0; q < 4; q++) {
      const before = await counters(s);
      await load(s, 0.25);
      const after = await counters(s);
      quarters[s.config][q].push((after.cpu - before.cpu) / (after.received - before.received));
    }
  }
}
console.log(
  `app CPU µs per request in each quarter of a 1 s slice after ${cli.gap} ms idle (medians); flags: ${execArgv.join(' ') || 'none'}`,
);
for (const c of configs)
  console.log(`  ${c.padEnd(24)}${quarters[c].map((xs) => median(xs).toFixed(0).padStart(6)).join('')}`);
for (const s of servers) s.child.kill();
process.exit(0);
