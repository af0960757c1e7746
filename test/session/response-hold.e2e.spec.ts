import http from 'node:http';
import { Readable } from 'node:stream';
import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  ServiceUnavailableException,
  UseFilters,
  UseInterceptors,
  Controller,
  Get,
  Module,
  Query,
  Req,
  Res,
  Sse,
  StreamableFile,
  type INestApplication,
  type MessageEvent,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import compression from 'compression';
import type { Request, Response } from 'express';
import { interval, map, type Observable } from 'rxjs';
import request from 'supertest';
import {
  Session,
  SessionModule,
  SessionStateInterceptor,
  TempData,
  type TempDataDictionary,
  type SessionModuleOptions,
} from 'nest-session-state';
import { cookiePair } from '../support/cookie-jar.js';
import { createPlatformApp, sendBody } from '../support/platform/test-platform.js';
import { FailingCommits, SlowCommits } from '../support/commit-stores.js';

const COOKIE = '.Nest.Session';
const BIG = Buffer.alloc(2 * 1024 * 1024, 'x'); // well past the socket's high-water mark
/** Whether the flood-end-later route's `end` callback was called. */
const endLater = { called: false };
/** The once-writer route's `once('drain')` listeners that were called twice (each must run once). */
const onceWriter = { twice: 0 };

@Catch(ServiceUnavailableException)
class RenderUnavailable implements ExceptionFilter {
  catch(_error: ServiceUnavailableException, host: ArgumentsHost) {
    sendBody(host.switchToHttp().getResponse(), { rendered: 'by the filter' }, 503);
  }
}

@Controller('hold')
class HoldController {
  @Get('json')
  json(@Session() session: Session) {
    session.setString('name', 'json');
    return { ok: true };
  }

  @Get('stream')
  stream(@Session() session: Session) {
    session.setString('name', 'stream');
    return new StreamableFile(Readable.from([Buffer.from('hello '), Buffer.from('world')]));
  }

  @Get('big')
  big(@Session() session: Session) {
    session.setString('name', 'big');
    const chunks = Array.from({ length: 32 }, (_, i) => BIG.subarray(i * 65536, (i + 1) * 65536));
    return new StreamableFile(Readable.from(chunks));
  }

  /** BIG in 64 KiB writes by hand, the next one on `once('drain')` whenever write() asks to wait. */
  @Get('once-writer')
  onceWriter(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'once-writer');
    res.setHeader('content-type', 'text/plain'); // compressible: compression gzips it
    let offset = 0;
    const next = () => {
      while (offset < BIG.length) {
        const chunk = BIG.subarray(offset, offset + 65536);
        offset += chunk.length;
        if (!res.write(chunk)) {
          let woken = false;
          res.once('drain', () => {
            if (woken) onceWriter.twice++;
            woken = true;
            next();
          });
          return;
        }
      }
      res.end();
    };
    next();
  }

  @Get('writes')
  writes(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'writes');
    res.write('a');
    res.write('b');
    res.end('c');
  }

  @Get('flood')
  flood(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'flood');
    for (let i = 0; i < 32; i++) res.write(BIG.subarray(i * 65536, (i + 1) * 65536)); // ignores false
    res.end();
  }

  /** The flood without its end; the end comes later, after a failed commit cut the response off. */
  @Get('flood-end-later')
  floodEndLater(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'flood');
    for (let i = 0; i < 32; i++) res.write(BIG.subarray(i * 65536, (i + 1) * 65536)); // ignores false
    setTimeout(() => res.end(() => (endLater.called = true)), 400);
  }

  @Sse('events')
  events(@Session() session: Session): Observable<MessageEvent> {
    session.setString('name', 'sse');
    return interval(20).pipe(map((i) => ({ data: { i } })));
  }

  @Get('filtered')
  @UseInterceptors(SessionStateInterceptor)
  @UseFilters(RenderUnavailable)
  filtered(@Session() session: Session) {
    session.setString('name', 'filtered');
    return { ok: true };
  }

  /** A 2 MiB body returned at once (one `end`), with a new session's value and a TempData message. */
  @Get('big-body')
  bigBody(@Session() session: Session, @TempData() tempData: TempDataDictionary) {
    session.setString('name', 'big-body');
    tempData.set('flash', 'after a big body');
    return BIG.toString('latin1');
  }

  /** The same after regenerate() (sign-in): the new key's cookie must go out with the big body. */
  @Get('big-regenerate')
  bigRegenerate(@Session() session: Session) {
    session.regenerate();
    session.setString('name', 'big-regenerate');
    return BIG.toString('latin1');
  }

  /**
   * compression applied by the route itself, after the session's first use: it wraps the response's methods above
   * the hold. `?later=1`: the route ends its body after the commit settled.
   */
  @Get('late-compression')
  async lateCompression(
    @Session() session: Session,
    @Req() req: Request,
    @Res() res: Response,
    @Query('later') later?: string,
  ) {
    session.setString('name', 'late-compression');
    await new Promise<void>((next) => compression({ threshold: 0 })(req, res, () => next()));
    res.setHeader('content-type', 'application/json');
    if (!later) return void res.end('{"ok":true}');
    res.write('{"ok":');
    setTimeout(() => res.end('true}'), 50);
  }

  /** A header set at writeHead by a wrapper of it alone (as on-headers does for response-time), added in the route. */
  @Get('late-on-headers')
  lateOnHeaders(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'late-on-headers');
    const writeHead = res.writeHead;
    res.writeHead = function (this: Response, ...args: unknown[]) {
      this.setHeader('x-on-headers', 'fired');
      return (writeHead as (...a: unknown[]) => Response).apply(this, args);
    } as Response['writeHead'];
    res.json({ ok: true });
  }

  /** Which of the hold's properties the response carries as its own once the session is used. */
  @Get('own-properties')
  ownProperties(@Session() session: Session, @Res() res: Response) {
    session.setString('name', 'own-properties');
    const own = ['write', 'end', 'headersSent', 'writableEnded', 'setHeader'].filter((name) =>
      Object.hasOwn(res, name),
    );
    res.json({ own, headersSent: res.headersSent });
  }

  @Get('read')
  read(@Session() session: Session, @TempData() tempData: TempDataDictionary) {
    return { name: session.getString('name') ?? null, flash: tempData.get('flash') ?? null };
  }
}

async function start(
  options: SessionModuleOptions = {},
  beforeInit?: (app: INestApplication) => void,
): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [HoldController] })
  class HoldAppModule {}
  const ref = await Test.createTestingModule({ imports: [HoldAppModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  beforeInit?.(app);
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

function collect(r: NodeJS.ReadableStream, done: (error: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  r.on('data', (chunk: Buffer) => chunks.push(chunk));
  r.on('end', () => done(null, Buffer.concat(chunks)));
}

async function readName(url: string, cookie: string): Promise<string | null> {
  const { body } = await request(url).get('/hold/read').set('Cookie', cookie).expect(200);
  return (body as { name: string | null }).name;
}

describe('the response waits for the session commit: end, streams, writes, SSE, own res.end', () => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await start());
  });
  afterAll(() => app.close());

  it.each([
    ['/hold/json', '{"ok":true}', 'json'],
    ['/hold/stream', 'hello world', 'stream'],
    ['/hold/writes', 'abc', 'writes'],
  ])(
    '%s: the new session cookie is sent, the body is intact and the value stored',
    async (path, text, name) => {
      const res = await request(url)
        .get(path)
        .buffer(true)
        .parse((r, done) => {
          let body = '';
          r.on('data', (chunk: Buffer) => (body += chunk.toString()));
          r.on('end', () => done(null, body));
        });
      expect(res.status).toBe(200);
      expect(res.body).toBe(text);
      const cookie = cookiePair(res, COOKIE);
      expect(cookie).toMatch(/^\.Nest\.Session=/);
      expect(await readName(url, cookie)).toBe(name);
    },
  );

  it('a 2 MiB body written at once keeps its commit: the new session cookie, the value and TempData', async () => {
    const res = await request(url)
      .get('/hold/big-body')
      .buffer(true)
      .parse(collect as never)
      .expect(200);
    expect((res.body as Buffer).equals(BIG)).toBe(true);
    const cookies = (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
    expect(cookies.some((c) => c.startsWith('.Nest.TempData='))).toBe(true);
    const { body } = await request(url)
      .get('/hold/read')
      .set('Cookie', cookies.map((c) => c.split(';')[0]).join('; '))
      .expect(200);
    expect(body).toEqual({ name: 'big-body', flash: 'after a big body' });
  });

  it('a 2 MiB body after regenerate() carries the new key, and the old one is gone', async () => {
    const old = cookiePair(await request(url).get('/hold/json').expect(200), COOKIE);
    const res = await request(url)
      .get('/hold/big-regenerate')
      .set('Cookie', old)
      .buffer(true)
      .parse(collect as never)
      .expect(200);
    const renewed = cookiePair(res, COOKIE);
    expect(renewed).toMatch(/^\.Nest\.Session=/);
    expect(renewed).not.toBe(old);
    expect(await readName(url, renewed)).toBe('big-regenerate');
    expect(await readName(url, old)).toBeNull();
  });

  it('a 2 MiB stream (back-pressure after the held first write) arrives whole', async () => {
    const res = await request(url)
      .get('/hold/big')
      .buffer(true)
      .parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (chunk: Buffer) => chunks.push(chunk));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect((res.body as Buffer).equals(BIG)).toBe(true);
    expect(await readName(url, cookiePair(res, COOKIE))).toBe('big');
  });

  it('SSE: what the handler stored is visible to other requests while the stream is still open', async () => {
    const first = await request(url).get('/hold/json').expect(200);
    const cookie = cookiePair(first, COOKIE);
    const { port } = new URL(url);
    const seenWhileOpen = await new Promise<string | null>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/hold/events', headers: { cookie } }, (res) => {
        let events = 0;
        res.on('data', () => {
          if (++events !== 2) return;
          readName(url, cookie).then((name) => {
            req.destroy();
            resolve(name);
          }, reject);
        });
      });
      req.on('error', () => undefined); // destroyed on purpose
    });
    expect(seenWhileOpen).toBe('sse');
  });
});

describe('the response hold with middleware that replaces res.end (compression)', () => {
  it.each(['identity', 'gzip'])('Accept-Encoding %s: the new session cookie is sent', async (encoding) => {
    const { app, url } = await start({}, (nest) => nest.use(compression({ threshold: 0 })));
    try {
      const res = await request(url).get('/hold/json').set('Accept-Encoding', encoding).expect(200);
      expect(res.body).toEqual({ ok: true });
      const cookie = cookiePair(res, COOKIE);
      expect(await readName(url, cookie)).toBe('json');
      const streamed = await request(url).get('/hold/stream').set('Accept-Encoding', encoding).expect(200);
      expect(cookiePair(streamed, COOKIE)).toMatch(/^\.Nest\.Session=/);
    } finally {
      await app.close();
    }
  });

  it("SSE that starts a session streams its events: the app's no-transform stays, so compression leaves it alone", async () => {
    const { app, url } = await start({}, (nest) => nest.use(compression({ threshold: 0 })));
    try {
      const { port } = new URL(url);
      const { headers, events } = await new Promise<{ headers: http.IncomingHttpHeaders; events: number }>(
        (resolve, reject) => {
          const req = http.get(
            { host: '127.0.0.1', port, path: '/hold/events', headers: { 'accept-encoding': 'gzip' } },
            (res) => {
              let events = 0;
              // Before, the library's Cache-Control replaced Nest's (no-transform gone): compression gzipped the
              // stream and held every event until it ended.
              const timer = setTimeout(
                () => (req.destroy(), resolve({ headers: res.headers, events })),
                3_000,
              );
              res.on('data', () => {
                if (++events < 2) return;
                clearTimeout(timer);
                req.destroy();
                resolve({ headers: res.headers, events });
              });
            },
          );
          req.on('error', (error: NodeJS.ErrnoException) => {
            if (error.code !== 'ECONNRESET') reject(error);
          });
        },
      );
      expect(events).toBe(2);
      expect(headers['content-encoding']).toBeUndefined();
      expect(headers['cache-control']).toContain('no-transform');
      expect(headers['cache-control']).toContain('no-store');
      expect(String(headers['set-cookie'])).toMatch(/^\.Nest\.Session=/);
    } finally {
      await app.close();
    }
  });

  it("a response compression gave its own methods gets the hold's own write and end, no own getters or header guards", async () => {
    // app.response's getters and guards answer for it (they find the same hold); own getters gave each such response
    // a shape of its own (~20 us per request, a review's micro-benchmark).
    const { app, url } = await start({}, (nest) => nest.use(compression({ threshold: 0 })));
    try {
      const res = await request(url).get('/hold/own-properties').expect(200);
      expect(res.body).toEqual({ own: ['write', 'end'], headersSent: false });
    } finally {
      await app.close();
    }
  });
});

describe('a slow commit before a 2 MiB stream under compression (its drain listeners live on its own stream)', () => {
  it.each([
    ['big', 'identity'],
    ['big', 'gzip'],
    ['once-writer', 'identity'],
    ['once-writer', 'gzip'],
  ])(
    '/hold/%s, Accept-Encoding %s: the writer waits through back-pressure; cookie set, body whole',
    async (path, encoding) => {
      const { app, url } = await start({ store: new SlowCommits() }, (nest) =>
        nest.use(compression({ threshold: 0 })),
      );
      try {
        const res = await request(url)
          .get(`/hold/${path}`)
          .set('Accept-Encoding', encoding)
          .buffer(true)
          .parse(collect as never);
        // supertest inflates a gzip body before it is collected
        expect(res.headers['content-encoding']).toBe(encoding === 'gzip' ? 'gzip' : undefined);
        expect((res.body as Buffer).equals(BIG)).toBe(true);
        expect(await readName(url, cookiePair(res, COOKIE))).toBe(path);
        expect(onceWriter.twice).toBe(0);
      } finally {
        await app.close();
      }
    },
  );
});

describe('a slow commit before a stream', () => {
  it('a small stream waits for it: cookie set, body intact', async () => {
    const { app, url } = await start({ store: new SlowCommits() });
    try {
      const res = await request(url).get('/hold/writes').expect(200, 'abc');
      expect(await readName(url, cookiePair(res, COOKIE))).toBe('writes');
    } finally {
      await app.close();
    }
  });

  it('a big stream waits for it through back-pressure: cookie set, body whole', async () => {
    const { app, url } = await start({ store: new SlowCommits() });
    try {
      const res = await request(url)
        .get('/hold/big')
        .buffer(true)
        .parse(collect as never);
      expect((res.body as Buffer).equals(BIG)).toBe(true);
      expect(await readName(url, cookiePair(res, COOKIE))).toBe('big');
    } finally {
      await app.close();
    }
  });

  it('writes that ignore back-pressure past 1 MiB go out without waiting (bounded buffer); the commit still lands', async () => {
    const { app, url } = await start({ store: new SlowCommits() });
    try {
      const first = await request(url).get('/hold/json').expect(200);
      const cookie = cookiePair(first, COOKIE);
      const res = await request(url)
        .get('/hold/flood')
        .set('Cookie', cookie)
        .buffer(true)
        .parse(collect as never);
      expect((res.body as Buffer).equals(BIG)).toBe(true);
      // The commit (150 ms) lands a little after the response: polled, not a fixed wait, on a loaded machine.
      for (let waited = 0; (await readName(url, cookie)) !== 'flood' && waited < 5_000; waited += 50)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await readName(url, cookie)).toBe('flood');
    } finally {
      await app.close();
    }
  });
});

/** The commits of a value holding "flood" take 150 ms and fail (a store that stalls, then answers an error). */
class FloodCommitsFail extends SlowCommits {
  override async commit(...args: Parameters<SlowCommits['commit']>): Promise<void> {
    const values = [...args[1].set.values()].map((bytes) => new TextDecoder().decode(bytes));
    if (!values.some((value) => value.includes('flood'))) return super.commit(...args);
    await new Promise((resolve) => setTimeout(resolve, 150));
    throw new Error('the store did not answer');
  }
}

/** GET `path` by Node's own client: the status, the body's length, and whether the response completed. */
function getWhole(
  url: string,
  path: string,
  cookie: string,
): Promise<{ status: number | undefined; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { headers: { cookie } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('error', () => undefined); // "aborted": the response did not complete, read below
      res.on('close', () => resolve({ status: res.statusCode, bytes, complete: res.complete }));
    });
    req.on('error', reject);
  });
}

describe('a stream that went out before its commit finished, whose commit then fails', () => {
  it('is cut off before its end: the client never gets a complete 200 for a write that was not saved', async () => {
    const { app, url } = await start({ store: new FloodCommitsFail() });
    try {
      const cookie = cookiePair(await request(url).get('/hold/json').expect(200), COOKIE);
      const res = await getWhole(url, '/hold/flood', cookie);
      expect(res.status).toBe(200); // the head left before the commit could fail
      expect(res.complete).toBe(false);
      expect(res.bytes).toBeLessThan(BIG.length);
      expect(await readName(url, cookie)).toBe('json');
    } finally {
      await app.close();
    }
  });

  it('an end(cb) the app calls once the response was cut off has its callback called (an app awaiting it goes on)', async () => {
    const { app, url } = await start({ store: new FloodCommitsFail() });
    try {
      const cookie = cookiePair(await request(url).get('/hold/json').expect(200), COOKIE);
      endLater.called = false;
      expect((await getWhole(url, '/hold/flood-end-later', cookie)).complete).toBe(false);
      const deadline = Date.now() + 3_000;
      while (!endLater.called && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(endLater.called).toBe(true);
    } finally {
      await app.close();
    }
  });
});

describe('a failed commit before a stream', () => {
  it('answers 503 instead of the stream, with nothing of the stream sent', async () => {
    const { app, url } = await start({ store: new FailingCommits() });
    try {
      const res = await request(url).get('/hold/stream').expect(503);
      expect(res.body).toEqual({
        statusCode: 503,
        message: 'Session state is temporarily unavailable.',
        error: 'Service Unavailable',
        code: 'SESSION_UNAVAILABLE',
      });
      const filtered = await request(url).get('/hold/filtered').expect(503);
      expect(filtered.body).toEqual({ rendered: 'by the filter' }); // with SessionStateInterceptor
      const writes = await request(url).get('/hold/writes').expect(503);
      expect(writes.body).toEqual({
        statusCode: 503,
        message: 'Session state is temporarily unavailable.',
        error: 'Service Unavailable',
        code: 'SESSION_UNAVAILABLE',
      });
    } finally {
      await app.close();
    }
  });

  it.each(['identity', 'gzip'])(
    'under compression (Accept-Encoding %s): the 503 arrives whole, in the encoding it is labelled with',
    async (encoding) => {
      const { app, url } = await start({ store: new FailingCommits() }, (nest) =>
        nest.use(compression({ threshold: 0 })),
      );
      try {
        for (const path of ['/hold/json', '/hold/stream']) {
          const res = await request(url).get(path).set('Accept-Encoding', encoding).timeout(5_000);
          expect(res.status).toBe(503);
          expect(res.body).toMatchObject({ code: 'SESSION_UNAVAILABLE' }); // decoded as labelled
        }
      } finally {
        await app.close();
      }
    },
  );

  it.each(['identity', 'gzip'])(
    'under compression applied after the session was first used (Accept-Encoding %s): the 503 arrives whole and plain, the request does not hang',
    async (encoding) => {
      const { app, url } = await start({ store: new FailingCommits() });
      try {
        for (const path of ['/hold/late-compression', '/hold/late-compression?later=1']) {
          // Before, with gzip, the route's compression swallowed the error reply: the request hung until the client gave up.
          const res = await request(url).get(path).set('Accept-Encoding', encoding).timeout(5_000);
          expect(res.status).toBe(503);
          expect(res.headers['content-encoding']).toBeUndefined();
          expect(res.body).toEqual({
            statusCode: 503,
            message: 'Session state is temporarily unavailable.',
            error: 'Service Unavailable',
            code: 'SESSION_UNAVAILABLE',
          });
        }
        // What the route's compression wrote after the reply was dropped, not an error: the app serves on.
        await new Promise((resolve) => setTimeout(resolve, 100));
        await request(url).get('/hold/read').expect(200);
      } finally {
        await app.close();
      }
    },
  );

  it("a wrapper of writeHead alone added after the session's first use still sees the 503's head (its header is on it)", async () => {
    const { app, url } = await start({ store: new FailingCommits() });
    try {
      const res = await request(url).get('/hold/late-on-headers').timeout(5_000);
      expect(res.status).toBe(503);
      expect(res.headers['x-on-headers']).toBe('fired');
    } finally {
      await app.close();
    }
  });

  it('under compression applied after the session was first used, a commit that succeeds answers as the route wrote it (gzip)', async () => {
    const { app, url } = await start();
    try {
      for (const path of ['/hold/late-compression', '/hold/late-compression?later=1']) {
        const res = await request(url).get(path).set('Accept-Encoding', 'gzip').timeout(5_000).expect(200);
        expect(res.headers['content-encoding']).toBe('gzip');
        expect(res.body).toEqual({ ok: true });
        expect(await readName(url, cookiePair(res, COOKIE))).toBe('late-compression');
      }
    } finally {
      await app.close();
    }
  });
});
