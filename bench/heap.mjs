// In-process memory of N sessions holding one counter, run by bench/run.mjs as
// `node --expose-gc bench/heap.mjs <nss|express-session> [N]` (one store per process). Prints JSON.
import { randomBytes } from 'node:crypto';

const [kind, countArg = '100000'] = process.argv.slice(2);
const N = Number(countArg);
if (typeof global.gc !== 'function') throw new Error('run with --expose-gc');

function settle() {
  for (let i = 0; i < 4; i++) global.gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** A session key as both libraries make them: 24 CSPRNG bytes, base64url (32 characters). */
const newKey = () => randomBytes(24).toString('base64url');

let store;
let fill;
if (kind === 'nss') {
  const { MemorySessionStore } = await import('nest-session-state');
  store = new MemorySessionStore();
  const idle = 20 * 60 * 1000;
  fill = async () => {
    for (let i = 0; i < N; i++) {
      // What session.setInt32('count', 1) records: 4 bytes, big-endian.
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setInt32(0, 1, false);
      const set = new Map([['count', bytes]]);
      const changes = { cleared: false, set, removed: new Set(), snapshot: () => new Map(set) };
      await store.commit(newKey(), changes, idle);
    }
    if (store.count !== N) throw new Error(`expected ${N} sessions, the store holds ${store.count}`);
  };
} else if (kind === 'express-session') {
  const { default: session } = await import('express-session');
  store = new session.MemoryStore();
  fill = async () => {
    for (let i = 0; i < N; i++) {
      // What express-session saves for req.session.count = 1 with the bench's cookie settings.
      const sess = { cookie: new session.Cookie({ path: '/', httpOnly: true, sameSite: 'lax' }), count: 1 };
      await new Promise((resolve, reject) => store.set(newKey(), sess, (e) => (e ? reject(e) : resolve())));
    }
    const length = await new Promise((resolve, reject) =>
      store.length((e, n) => (e ? reject(e) : resolve(n))),
    );
    if (length !== N) throw new Error(`expected ${N} sessions, the store holds ${length}`);
  };
} else {
  throw new Error(`unknown store ${kind}`);
}

const before = settle();
await fill();
const after = settle();
const heap = after.heapUsed - before.heapUsed;
const external = after.external - before.external;
process.stdout.write(
  JSON.stringify({
    kind,
    sessions: N,
    heapBytes: heap,
    externalBytes: external,
    bytesPerSession: (heap + external) / N,
    keep: store ? 1 : 0,
  }) + '\n',
);
