// Load generation with autocannon: session creation, timed runs with cookies rotated per request, and
// fixed-size runs (for counting Redis commands under MONITOR).
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { sleep } from './util.mjs';

export const COOKIE_NAME = '.Nest.Session';

/**
 * Creates `count` sessions by requesting /rmw without a cookie (autocannon, 16 connections) and returns
 * the `name=value` part of each Set-Cookie. Fails when a response is not 200 or sets no cookie.
 */
export function createSessions(baseUrl, count, connections = 16) {
  const cookies = new Set();
  const problems = [];
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: baseUrl,
        connections,
        amount: count,
        requests: [
          {
            method: 'GET',
            path: '/rmw',
            onResponse(status, body, _context, headers) {
              const name = Object.keys(headers).find((h) => h.toLowerCase() === 'set-cookie');
              const values = [headers[name] ?? []].flat();
              const cookie = values.find((c) => c.startsWith(`${COOKIE_NAME}=`));
              if (status !== 200 || !cookie || JSON.parse(body).count !== 1) {
                problems.push(`${status} ${body} ${JSON.stringify(values)}`);
              } else {
                cookies.add(cookie.split(';')[0]);
              }
            },
          },
        ],
      },
      (error, result) => {
        if (error) return reject(error);
        if (problems.length > 0 || result.errors > 0 || cookies.size !== count) {
          return reject(
            new Error(
              `creating ${count} sessions at ${baseUrl}: got ${cookies.size} distinct cookies, ` +
                `${result.errors} errors; first problem: ${problems[0] ?? 'none'}`,
            ),
          );
        }
        resolve([...cookies]);
      },
    );
  });
}

/** Cookies shaped like nest-session-state's, for the baseline (which ignores them). */
export function fakeCookies(count) {
  return Array.from(
    { length: count },
    () => `${COOKIE_NAME}=${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
  );
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/**
 * One autocannon run of GET `path` for `duration` seconds (or `amount` requests) over `connections`
 * keep-alive connections, each request carrying the next cookie of `cookies` (round robin); with `rate`,
 * at most that many requests per second in all (an open pace below saturation) instead of as fast as the
 * app answers. Latency percentiles come from every response time (autocannon's own histogram has 1 ms
 * resolution).
 */
export function runLoad({ url, path, cookies, connections, duration, amount, rate, timeout = 10 }) {
  let i = 0;
  const n = cookies.length;
  let latencies = new Float64Array(1 << 16);
  let recorded = 0;
  const statuses = {};
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        pipelining: 1,
        timeout, // seconds; bench/instructions.mjs waits longer (under valgrind a request may stall for seconds)
        // autocannon stops a timed run at its next sample tick: 100 ms ticks keep short runs short.
        sampleInt: 100,
        ...(amount !== undefined ? { amount } : { duration }),
        ...(rate !== undefined ? { overallRate: rate } : {}),
        requests: [
          {
            method: 'GET',
            path,
            setupRequest(request) {
              request.headers.cookie = cookies[i++ % n];
              return request;
            },
          },
        ],
      },
      (error, result) => {
        if (error) return reject(error);
        const sorted = latencies.subarray(0, recorded).sort();
        const requests = result.requests.total;
        resolve({
          requests,
          duration: result.duration,
          rps: requests / result.duration,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          meanLatency: sorted.reduce((a, b) => a + b, 0) / (recorded || 1),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statuses,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (recorded === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[recorded++] = responseTime;
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    });
  });
}

/** Throws when a run saw errors or non-2xx answers (the measurement would be meaningless). */
export function assertClean(label, result) {
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0 || result.requests === 0) {
    throw new Error(
      `${label}: ${result.requests} responses, ${result.errors} errors, ${result.timeouts} timeouts, ` +
        `${result.non2xx} non-2xx (status counts ${JSON.stringify(result.statuses)})`,
    );
  }
}

export { sleep };
