import 'reflect-metadata';
import { createServer, request as httpRequest, ServerResponse } from 'node:http';
import { createSecureServer } from 'node:http2';
import { Readable } from 'node:stream';
import {
  Body,
  Controller,
  Get,
  Injectable,
  Module,
  Param,
  Post,
  Res,
  Sse,
  UseInterceptors,
  type INestApplication,
  type MessageEvent,
} from '@nestjs/common';
import compress from '@fastify/compress';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import type { FastifyReply } from 'fastify';
import { of, type Observable } from 'rxjs';
import request from 'supertest';
import {
  MemorySessionStore,
  Session,
  SessionAccessor,
  SessionModule,
  SessionStateInterceptor,
  type SessionModuleOptions,
} from 'nest-session-state';
import { serverResponseClassSlot } from '../../libs/session-state/src/http/platforms/fastify.platform.js';
import { cookiePair, findSetCookie } from '../support/cookie-jar.js';
import { createPlatformApp } from '../support/platform/test-platform.js';
import { FailingCommits, SlowCommits } from '../support/commit-stores.js';

const COOKIE = '.Nest.Session';

@Injectable()
class Visits {
  constructor(private readonly sessions: SessionAccessor) {}
  /** Reads the session through the async context, after Fastify parsed the body. */
  async record(note: string): Promise<number> {
    const session = await this.sessions.load();
    const visits = (session.getInt32('visits') ?? 0) + 1;
    session.setInt32('visits', visits);
    session.setString('note', note);
    return visits;
  }
}

@Controller('fastify')
class FastifyResponsesController {
  constructor(private readonly visits: Visits) {}

  @Get('raw')
  raw(@Session() session: Session, @Res() reply: FastifyReply) {
    session.setString('name', 'raw');
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/plain' });
    reply.raw.write('a');
    reply.raw.write('b');
    reply.raw.end('c');
  }

  /** An event stream that ends at once: Nest ends reply.raw and resolves the route before the commit is done. */
  @Sse('sse-short')
  sseShort(@Session() session: Session): Observable<MessageEvent> {
    session.setString('name', 'sse-short');
    return of({ data: 'hello' });
  }

  /**
   * reply.raw written without hijack() by an async handler that returns once it ended the response
   * (`ended`), or while the body is still being written (`streaming`).
   */
  @Get('raw-async/:mode')
  async rawAsync(@Session() session: Session, @Res() reply: FastifyReply, @Param('mode') mode: string) {
    session.setString('name', `raw-async-${mode}`);
    await Promise.resolve();
    reply.raw.writeHead(200, { 'content-type': 'text/plain' });
    if (mode === 'ended') {
      reply.raw.end('done');
      return;
    }
    reply.raw.write('start ');
    setTimeout(() => reply.raw.end('end'), 30);
  }

  @Get('stream')
  stream(@Session() session: Session, @Res() reply: FastifyReply) {
    session.setString('name', 'stream');
    void reply.type('text/plain').send(Readable.from(['x', 'y', 'z']));
  }

  @Get('redirect')
  redirect(@Session() session: Session, @Res() reply: FastifyReply) {
    session.setString('name', 'redirect');
    void reply.redirect('/fastify/read', 303);
  }

  /** The app's own cookie through Fastify's reply headers, beside the session cookie committed in the pipeline. */
  @Get('own-cookie')
  @UseInterceptors(SessionStateInterceptor)
  ownCookie(@Session() session: Session, @Res({ passthrough: true }) reply: FastifyReply) {
    session.setString('name', 'own-cookie');
    void reply.header('set-cookie', 'theme=dark; Path=/');
    return { ok: true };
  }

  @Post('body')
  async body(@Body() body: { note: string }) {
    return { visits: await this.visits.record(body.note) };
  }

  /** A 2 MiB body returned at once: its one `end` is held like a small one's. */
  @Get('big')
  big(@Session() session: Session) {
    session.setString('name', 'big');
    return 'x'.repeat(2 * 1024 * 1024);
  }

  @Get('read')
  read(@Session() session: Session) {
    return { name: session.getString('name') ?? null, note: session.getString('note') ?? null };
  }

  /** The raw response's prototype before and after the session was used (and held the response). */
  @Get('prototype')
  prototype(@Session() session: Session, @Res({ passthrough: true }) reply: FastifyReply) {
    const before = Object.getPrototypeOf(reply.raw) as object;
    session.setString('name', 'prototype');
    prototypes.push([before, Object.getPrototypeOf(reply.raw) as object]);
    return { ok: true };
  }

  @Get('untouched')
  untouched(@Res({ passthrough: true }) reply: FastifyReply) {
    prototypes.push([Object.getPrototypeOf(reply.raw) as object]);
    return { ok: true };
  }
}

/** What the prototype routes saw, in order. */
const prototypes: object[][] = [];

async function startFastify(
  options: SessionModuleOptions,
  adapter?: FastifyAdapter,
  beforeListen?: (app: NestFastifyApplication) => Promise<void>,
): Promise<{ app: INestApplication; url: string }> {
  @Module({
    imports: [SessionModule.forRoot(options)],
    controllers: [FastifyResponsesController],
    providers: [Visits],
  })
  class FastifyAppModule {}
  const ref = await Test.createTestingModule({ imports: [FastifyAppModule] }).compile();
  const app = adapter
    ? ref.createNestApplication(adapter, { logger: false })
    : createPlatformApp(ref, { logger: false }, 'fastify');
  await beforeListen?.(app as NestFastifyApplication);
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

/** POSTs JSON whose body arrives 50 ms after the head, in the socket's callbacks (a slow client). */
function postSlowly(
  url: string,
  path: string,
  body: object,
  cookie?: string,
): Promise<{ status: number; text: string }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...(cookie ? { cookie } : {}),
      },
    });
    req.on('response', (res) => {
      let received = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (received += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: received }));
    });
    req.on('error', reject);
    req.flushHeaders();
    setTimeout(() => req.end(text), 50);
  });
}

async function readSession(url: string, cookie: string) {
  const { body } = await request(url).get('/fastify/read').set('Cookie', cookie).expect(200);
  return body as { name: string | null; note: string | null };
}

describe.each([
  ['the in-process store', () => ({})],
  ['a store whose commits take 150 ms', () => ({ store: new SlowCommits() })],
] as const)('Fastify responses wait for the session commit (%s)', (_name, options) => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => ({ app, url } = await startFastify(options())));
  afterAll(() => app.close());

  it('reply.raw writes after reply.hijack(): the new session cookie is sent, the body intact, the value stored', async () => {
    const res = await request(url).get('/fastify/raw').expect(200, 'abc');
    expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe('raw');
  });

  it('an @Sse() stream that ends before the commit: the events, the cookie and the value all arrive', async () => {
    const res = await request(url).get('/fastify/sse-short').expect(200);
    expect(res.text).toContain('data: hello');
    expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe('sse-short');
  });

  it.each(['ended', 'streaming'])(
    'an async handler writing reply.raw without hijack() (%s): Fastify adds no reply of its own',
    async (mode) => {
      const res = await request(url).get(`/fastify/raw-async/${mode}`).expect(200);
      expect(res.text).toBe(mode === 'ended' ? 'done' : 'start end');
      expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe(`raw-async-${mode}`);
    },
  );

  it('a stream sent with reply.send(): cookie set, body whole', async () => {
    const res = await request(url).get('/fastify/stream').expect(200, 'xyz');
    expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe('stream');
  });

  it('a 2 MiB returned body: the new session cookie is sent, the body whole, the value stored', async () => {
    const res = await request(url).get('/fastify/big').expect(200);
    expect(res.text).toHaveLength(2 * 1024 * 1024);
    expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe('big');
  });

  it('reply.redirect(): the redirect carries the cookie of the session it stored', async () => {
    const res = await request(url).get('/fastify/redirect').expect(303);
    expect(res.headers.location).toBe('/fastify/read');
    expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe('redirect');
  });

  it("the app's own Set-Cookie in Fastify's reply headers and the session cookie committed in the pipeline both arrive", async () => {
    const res = await request(url).get('/fastify/own-cookie').expect(200, { ok: true });
    expect(findSetCookie(res, 'theme')).toBe('theme=dark; Path=/');
    expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe('own-cookie');
  });

  it('a service reads the session through SessionAccessor after Fastify parsed a JSON body (async context kept)', async () => {
    const first = await request(url).post('/fastify/body').send({ note: 'one' }).expect(201, { visits: 1 });
    const cookie = cookiePair(first, COOKIE);
    await request(url)
      .post('/fastify/body')
      .set('Cookie', cookie)
      .send({ note: 'two' })
      .expect(201, { visits: 2 });
    expect((await readSession(url, cookie)).note).toBe('two');
  });

  it('the same with a body that arrives after the head (parsed in the socket callbacks)', async () => {
    const first = await request(url).post('/fastify/body').send({ note: 'one' }).expect(201);
    const cookie = cookiePair(first, COOKIE);
    expect(await postSlowly(url, '/fastify/body', { note: 'slow' }, cookie)).toEqual({
      status: 201,
      text: JSON.stringify({ visits: 2 }),
    });
    expect((await readSession(url, cookie)).note).toBe('slow');
  });
});

describe("Fastify's server makes the held responses (no prototype change per request)", () => {
  it('finds the response class of Node HTTP(S) servers, and none on HTTP/2 or a server without one', () => {
    const server = createServer();
    const slot = serverResponseClassSlot(server);
    expect(slot?.description).toBe('ServerResponse');
    expect((server as unknown as Record<symbol, unknown>)[slot!] === ServerResponse).toBe(true);
    expect(serverResponseClassSlot(createSecureServer())).toBeUndefined();
    expect(serverResponseClassSlot({})).toBeUndefined();
    expect(serverResponseClassSlot(undefined)).toBeUndefined();
  });

  it('every response of the app is made held: using the session changes no prototype, untouched routes get the same class, the commit still precedes the head', async () => {
    const { app, url } = await startFastify({ store: new SlowCommits() });
    try {
      prototypes.length = 0;
      const used = await request(url).get('/fastify/prototype').expect(200);
      await request(url).get('/fastify/untouched').expect(200);
      const [[before, after], [untouched]] = prototypes;
      // Compared as booleans: Jest cannot print these prototypes.
      expect(after === before).toBe(true);
      expect(untouched === before).toBe(true);
      expect(before === ServerResponse.prototype).toBe(false);
      expect(before instanceof ServerResponse).toBe(true);
      // Held: the 150 ms commit finished before the head left with its cookie.
      const cookie = cookiePair(used, COOKIE);
      expect(await readSession(url, cookie)).toEqual({ name: 'prototype', note: null });
    } finally {
      await app.close();
    }
  });

  it('on a server without the class slot, a held response is moved onto the holding prototype instead, and still waits for the commit', async () => {
    const adapter = new FastifyAdapter();
    const server = adapter.getInstance<{ server: object }>().server;
    // A Node whose server keeps its response class elsewhere: the library finds no slot.
    const symbolsOf = Object.getOwnPropertySymbols;
    const hidden = jest
      .spyOn(Object, 'getOwnPropertySymbols')
      .mockImplementation((target: object) => (target === server ? [] : symbolsOf(target)));
    let started: { app: INestApplication; url: string };
    try {
      started = await startFastify({ store: new SlowCommits() }, adapter);
    } finally {
      hidden.mockRestore();
    }
    const { app, url } = started;
    try {
      prototypes.length = 0;
      const used = await request(url).get('/fastify/prototype').expect(200);
      await request(url).get('/fastify/untouched').expect(200);
      const [[held], [untouched]] = prototypes;
      // Node's own class for a response that holds nothing; the holding prototype once the session is used.
      expect(untouched === ServerResponse.prototype).toBe(true);
      expect(held === ServerResponse.prototype).toBe(false);
      expect(held instanceof ServerResponse).toBe(true);
      const cookie = cookiePair(used, COOKIE);
      expect(await readSession(url, cookie)).toEqual({ name: 'prototype', note: null });
    } finally {
      await app.close();
    }
  });
});

describe('Fastify with @fastify/compress (it compresses in onSend, its stream ends on reply.raw)', () => {
  const withCompress = (store: MemorySessionStore) =>
    startFastify({ store }, undefined, async (app) => {
      await app.register(compress, { threshold: 0 });
    });

  it.each(['/fastify/big', '/fastify/stream'])(
    'a slow commit under gzip (%s): the cookie is sent, the body decodes whole, the value is stored',
    async (path) => {
      const { app, url } = await withCompress(new SlowCommits());
      try {
        const res = await request(url).get(path).set('Accept-Encoding', 'gzip').timeout(5_000).expect(200);
        expect(res.headers['content-encoding']).toBe('gzip');
        expect(res.text).toBe(path === '/fastify/big' ? 'x'.repeat(2 * 1024 * 1024) : 'xyz');
        expect((await readSession(url, cookiePair(res, COOKIE))).name).toBe(path.slice('/fastify/'.length));
      } finally {
        await app.close();
      }
    },
  );

  it.each(['gzip', 'identity'])(
    'a failed commit (Accept-Encoding %s): the JSON 503, decodable as labelled, for a returned body and a stream',
    async (encoding) => {
      const { app, url } = await withCompress(new FailingCommits());
      try {
        for (const path of ['/fastify/big', '/fastify/stream']) {
          // Before the error reply dropped the route's head, the gzip label stayed on the plain JSON (a decoding error).
          const res = await request(url).get(path).set('Accept-Encoding', encoding).timeout(5_000);
          expect(res.status).toBe(503);
          expect(res.body).toMatchObject({ statusCode: 503, code: 'SESSION_UNAVAILABLE' });
          expect(res.headers['set-cookie']).toBeUndefined();
        }
      } finally {
        await app.close();
      }
    },
  );
});
