import http from 'node:http';

/** A JSON response from {@link httpJson}. */
export interface JsonResponse<T> {
  status: number;
  body: T;
  headers: http.IncomingHttpHeaders;
}

/**
 * A bare HTTP request with node:http, for tests that need control over connections (keep-alive
 * reuse, a thousand requests in flight) that supertest does not give.
 */
export function httpJson<T = Record<string, unknown>>(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; agent?: http.Agent } = {},
): Promise<JsonResponse<T>> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, url),
      { method: options.method ?? 'GET', headers: options.headers, agent: options.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: (text ? JSON.parse(text) : undefined) as T,
              headers: res.headers,
            });
          } catch (error) {
            reject(new Error(`not JSON (${res.statusCode}): ${text.slice(0, 200)}`, { cause: error }));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
