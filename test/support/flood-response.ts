import request from 'supertest';
import { rawResponse, type PlatformResponse } from './platform/test-platform.js';

/**
 * Responses that outgrow the library's response hold (1 MiB): the head leaves before the session's commit ends, as
 * a large stream's does.
 */

/** A body twice the response hold. */
export const BIG = Buffer.alloc(2 * 1024 * 1024, 'x');

/**
 * Writes {@link BIG} in one turn, ignoring backpressure (`false` from write), and ends the response: Express's
 * response, or Fastify's `reply.raw` (hijacked).
 */
export function flood(res: PlatformResponse): void {
  const raw = rawResponse(res);
  for (let i = 0; i < 32; i++) raw.write(BIG.subarray(i * 65536, (i + 1) * 65536));
  raw.end();
}

/** GET `path` with `cookie`, its body read whole as a Buffer. */
export const getFlood = (url: string, path: string, cookie = '') =>
  request(url)
    .get(path)
    .set('Cookie', cookie)
    .buffer(true)
    .parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (chunk: Buffer) => chunks.push(chunk));
      r.on('end', () => done(null, Buffer.concat(chunks)));
    });
