import { connect, Http2ServerResponse, type ClientHttp2Session } from 'node:http2';
import { jest } from '@jest/globals';
import { Controller, Get, Module, Post, Redirect, Res, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import {
  MemorySessionStore,
  Session,
  SessionModule,
  TempData,
  type TempDataDictionary,
} from 'nest-session-state';
import { SessionTestController } from '../support/apps/session-test.app.js';
import { generateTlsCertificates, type TlsCertificates } from '../support/redis/tls-certificates.js';
import { CaptureLogger } from '../support/capture-logger.js';

@Controller()
class Http2Controller {
  @Post('flash')
  @Redirect('/flash')
  flash(@TempData() tempData: TempDataDictionary) {
    tempData.set('Message', 'saved over h2');
  }

  @Get('flash')
  show(@TempData() tempData: TempDataDictionary) {
    return { message: tempData.get('Message') ?? null };
  }
}

interface H2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(
  client: ClientHttp2Session,
  method: string,
  path: string,
  cookie?: string,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':method': method, ':path': path, ...(cookie ? { cookie } : {}) });
    let body = '';
    let head: Record<string, string | string[] | undefined> = {};
    stream.setEncoding('utf8');
    stream.on('response', (headers) => (head = headers as Record<string, string | string[] | undefined>));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body }));
    stream.on('error', reject);
    stream.end();
  });
}

function cookiesOf(res: H2Response): string {
  const set = res.headers['set-cookie'];
  return (Array.isArray(set) ? set : set ? [set] : []).map((c) => c.split(';')[0]).join('; ');
}

/**
 * HTTP/2 on Fastify (`new FastifyAdapter({ http2: true })`, cleartext h2c, and `https` as browsers use it):
 * the response hold works on Node's Http2ServerResponse as on HTTP/1.1, and over TLS the cookies get
 * `Secure`. Express has no HTTP/2 server of its own.
 */
describe.each([
  ['h2c', false],
  ['over TLS', true],
])('HTTP/2 on Fastify (%s)', (_name, tls) => {
  let app: INestApplication;
  let client: ClientHttp2Session;
  let certificates: TlsCertificates | undefined;

  beforeAll(async () => {
    @Module({
      imports: [SessionModule.forRoot({ secrets: ['Hp3kWz8qLm1nTr6vXc9bJd2fGs5aYe7uKo4iQt0N1B'] })],
      controllers: [SessionTestController, Http2Controller],
    })
    class AppModule {}
    const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
    certificates = tls ? await generateTlsCertificates() : undefined;
    const adapter = new FastifyAdapter(
      (certificates
        ? { http2: true, https: { key: certificates.key, cert: certificates.cert } }
        : { http2: true }) as never,
    );
    app = ref.createNestApplication(adapter, { logger: false });
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('http://', tls ? 'https://' : 'http://');
    client = connect(url, certificates ? { ca: certificates.ca } : {});
  });
  afterAll(async () => {
    client?.close();
    await app?.close();
    await certificates?.remove();
  });

  it('the session cookie is Secure exactly over TLS', async () => {
    const res = await send(client, 'GET', '/counter');
    const set = [res.headers['set-cookie']].flat().join('\n');
    expect(set).toMatch(/^\.Nest\.Session=/);
    expect(/;\s*secure/i.test(set)).toBe(tls);
  });

  it('a session survives requests on one connection', async () => {
    const first = await send(client, 'GET', '/counter');
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toEqual({ count: 1 });
    const cookie = cookiesOf(first);
    expect(cookie).toMatch(/^\.Nest\.Session=/);
    const second = await send(client, 'GET', '/counter', cookie);
    expect(JSON.parse(second.body)).toEqual({ count: 2 });
  });

  it('multiplexed streams of many sessions on one connection each keep their own session', async () => {
    const firsts = await Promise.all(Array.from({ length: 20 }, () => send(client, 'GET', '/counter')));
    const cookies = firsts.map(cookiesOf);
    expect(new Set(cookies).size).toBe(20);
    expect(firsts.map((r) => r.headers['cache-control'])).toEqual(Array(20).fill('no-cache, no-store'));
    const seconds = await Promise.all(cookies.map((cookie) => send(client, 'GET', '/counter', cookie)));
    expect(seconds.map((r) => JSON.parse(r.body) as unknown)).toEqual(Array(20).fill({ count: 2 }));
    expect(seconds.map(cookiesOf)).toEqual(Array(20).fill('')); // an established cookie is not sent again
  });

  it('a held response neither reads nor sets a status text, which HTTP/2 has not (Node warns on either)', async () => {
    // Once per process Node warns "Status message is not supported by HTTP/2": the accessors are watched instead.
    const read = jest.spyOn(Http2ServerResponse.prototype, 'statusMessage', 'get');
    const set = jest.spyOn(Http2ServerResponse.prototype, 'statusMessage', 'set');
    try {
      const first = await send(client, 'GET', '/counter');
      await send(client, 'GET', '/counter', cookiesOf(first));
      expect([read.mock.calls.length, set.mock.calls.length]).toEqual([0, 0]);
    } finally {
      read.mockRestore();
      set.mockRestore();
    }
  });

  it('TempData survives a redirect', async () => {
    const posted = await send(client, 'POST', '/flash');
    expect(posted.status).toBe(302);
    const shown = await send(client, 'GET', '/flash', cookiesOf(posted));
    expect(JSON.parse(shown.body)).toEqual({ message: 'saved over h2' });
  });
});

/**
 * The TempData cookie budget on HTTP/2: checked at the first request against HTTP/2's header list limit (~64 KiB in
 * Node), not HTTP/1's `maxHeaderSize` (16 KiB), which does not apply (a probe: a 12,000-byte budget was warned of,
 * with advice that changes nothing there).
 */
describe('the TempData cookie budget on HTTP/2 (Fastify, h2c)', () => {
  async function budgetWarnings(maxCookieBytes: number, maxHeaderListSize?: number): Promise<string[]> {
    @Module({
      imports: [
        SessionModule.forRoot({
          secrets: ['Hp3kWz8qLm1nTr6vXc9bJd2fGs5aYe7uKo4iQt0N1B'],
          tempData: { maxCookieBytes },
        }),
      ],
      controllers: [SessionTestController, Http2Controller],
    })
    class AppModule {}
    const logger = new CaptureLogger();
    const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const http = maxHeaderListSize === undefined ? {} : { settings: { maxHeaderListSize } };
    const app = ref.createNestApplication(new FastifyAdapter({ http2: true, http } as never), { logger });
    await app.listen(0, '127.0.0.1');
    const client = connect(await app.getUrl());
    try {
      const posted = await send(client, 'POST', '/flash');
      expect(posted.status).toBe(302);
    } finally {
      client.close();
      await app.close();
    }
    return logger.lines.filter((l) => l.message.startsWith('[TempDataCookieBudget] ')).map((l) => l.message);
  }

  it('a 12,000-byte budget, which HTTP/1 would not take, is not warned of', async () => {
    expect(await budgetWarnings(12_000)).toEqual([]);
  });

  it("the largest budget (48 KiB) fits HTTP/2's default limit; past a server's lower maxHeaderListSize it is warned of, naming that limit", async () => {
    expect(await budgetWarnings(48 * 1024)).toEqual([]);
    const warned = await budgetWarnings(30_000, 32_768);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('under the HTTP/2 header list limit of 32768 bytes');
    expect(warned[0]).not.toContain('maxHeaderSize');
  });
});

/** A memory store whose commits of a session holding "flood" stall 150 ms, then fail. */
class FloodCommitsFail extends MemorySessionStore {
  override async commit(...args: Parameters<MemorySessionStore['commit']>): Promise<void> {
    const values = [...args[1].set.values()].map((bytes) => new TextDecoder().decode(bytes));
    if (!values.some((value) => value.includes('flood'))) return super.commit(...args);
    await new Promise((resolve) => setTimeout(resolve, 150));
    throw new Error('the store did not answer');
  }
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');
const CHUNKS = 32; // 2 MiB: past the response hold's 1 MiB, so the head leaves before the commit settles

@Controller()
class FloodController {
  /** Sets a value, then writes 2 MiB straight to the raw response, ignoring back-pressure. */
  @Get('flood')
  flood(
    @Session() session: Session,
    @Res() reply: { raw: NodeJS.WritableStream & { writeHead(s: number): void } },
  ) {
    session.setString('name', 'flood');
    reply.raw.writeHead(200);
    for (let i = 0; i < CHUNKS; i++) reply.raw.write(CHUNK);
    reply.raw.end();
  }
}

describe('HTTP/2 on Fastify: a stream that went out before its commit finished, whose commit then fails', () => {
  it('is reset with an error code: the client never reads a complete 200 for a write that was not saved', async () => {
    @Module({
      imports: [SessionModule.forRoot({ store: new FloodCommitsFail() })],
      controllers: [FloodController],
    })
    class AppModule {}
    const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = ref.createNestApplication(new FastifyAdapter({ http2: true } as never), { logger: false });
    await app.listen(0, '127.0.0.1');
    const client = connect(await app.getUrl());
    try {
      const outcome = await new Promise<{ status: number; bytes: number; ended: boolean; rstCode: number }>(
        (resolve) => {
          const stream = client.request({ ':method': 'GET', ':path': '/flood' });
          let status = 0;
          let bytes = 0;
          let ended = false;
          stream.on('response', (headers) => (status = Number(headers[':status'])));
          stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
          stream.on('end', () => (ended = true));
          stream.on('error', () => undefined); // the reset, read below
          stream.on('close', () => resolve({ status, bytes, ended, rstCode: stream.rstCode ?? 0 }));
          stream.end();
        },
      );
      expect(outcome.status).toBe(200); // the head left before the commit could fail
      expect(outcome.bytes).toBeLessThan(CHUNKS * CHUNK.length);
      expect(outcome.ended).toBe(false); // no END_STREAM: not a complete response
      expect(outcome.rstCode).not.toBe(0); // NO_ERROR would read as a normal end
    } finally {
      client.close();
      await app.close();
    }
  });
});
