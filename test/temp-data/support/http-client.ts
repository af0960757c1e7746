import { request as httpRequest } from 'node:http';
import { MAX_HEADER_SIZE } from './temp-data-test.app.js';

/** What {@link send} returns: enough of a response for cookie assertions (same shape supertest gives). */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
}

/**
 * One HTTP request with a header limit of {@link MAX_HEADER_SIZE} on the client side too: supertest
 * uses Node's default of 16 KiB and cannot read a response carrying a 20 KB chunked cookie.
 */
export function send(
  url: string,
  method: 'GET' | 'POST',
  path: string,
  options: {
    cookie?: string;
    json?: unknown;
    form?: Record<string, string>;
    headers?: Record<string, string>;
  } = {},
): Promise<RawResponse> {
  const headers: Record<string, string | number> = { ...options.headers };
  let body: string | undefined;
  if (options.form !== undefined) {
    body = new URLSearchParams(options.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  if (options.cookie) headers.cookie = options.cookie;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(path, url),
      { method, headers, maxHeaderSize: MAX_HEADER_SIZE },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = undefined;
          if (String(res.headers['content-type']).includes('json')) parsed = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
