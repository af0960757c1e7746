// The benchmark apps' side of bench/run.mjs's IPC (bench/server.mjs and bench/fastify-server.mjs): counts the requests
// the HTTP server received and those in flight, answers { id, type } messages (counters, memory, now,
// allocations-start, allocations-stop, stop), exits when the bench goes away, and reports { type: 'ready', port, pid } once listening.
import { AllocationSampler } from './allocations.mjs';

/**
 * @param httpServer the app's Node HTTP server (listening)
 * @param close closes the app and what it opened (Redis clients); the process exits after it
 */
export function serveBenchIpc(httpServer, close) {
  const { port } = httpServer.address();
  // Requests this process received and those still in flight, so the bench can divide counters by the
  // requests the server really handled (a run's last requests finish after the load generator stops).
  let received = 0;
  let inFlight = 0;
  httpServer.prependListener('request', (_req, res) => {
    received++;
    inFlight++;
    res.once('close', () => inFlight--);
  });

  let sampler;

  let stopping = false;
  async function stop() {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(0), 5000);
    try {
      await close();
    } finally {
      clearTimeout(timer);
      process.exit(0);
    }
  }

  process.on('message', (message) => {
    const reply = (body) => process.send({ id: message.id, ...body });
    switch (message?.type) {
      case 'stop':
        void stop();
        break;
      case 'counters': // CPU time so far (microseconds) and requests, to derive CPU per request
        reply({ cpu: process.cpuUsage(), received, inFlight });
        break;
      case 'memory':
        reply({ memory: process.memoryUsage() });
        break;
      case 'now': // the monotonic clock in microseconds, as .cpuprofile timestamps
        reply({ micros: Number(process.hrtime.bigint() / 1000n) });
        break;
      case 'allocations-start': // bench/syscalls.mjs: V8's sampling heap profiler, in this process
        sampler ??= new AllocationSampler();
        sampler.start().then(
          () => reply({}),
          (error) => reply({ error: String(error) }),
        );
        break;
      case 'allocations-stop': // bytes by area and function since allocations-start
        sampler.stop().then(
          (allocations) => reply({ allocations }),
          (error) => reply({ error: String(error) }),
        );
        break;
      default:
        reply({ error: `unknown request ${JSON.stringify(message)}` });
    }
  });
  process.on('disconnect', () => process.exit(0)); // the bench went away
  process.send({ type: 'ready', port, pid: process.pid });
}
