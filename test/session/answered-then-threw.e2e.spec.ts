import { Agent, request as httpRequest } from 'node:http';
import { Controller, Get, Module, Res, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { Session, SessionModule, type SessionModuleOptions } from 'nest-session-state';
import {
  createPlatformApp,
  rawResponse,
  sendBody,
  type PlatformResponse,
} from '../support/platform/test-platform.js';
import { FailingCommits, SlowCommits } from '../support/commit-stores.js';

/**
 * Routes that answered (or began to) and then threw, or answered twice: Nest's exception filter and its reply path
 * ask the platform whether the response was sent and then only end it. While the hold keeps the head, the response
 * must say it was sent, as it would without the session; before, on Express, Nest wrote a second reply into the
 * held one: the process crashed (write after end) or a body outgrew its Content-Length into the next response.
 */

/** What the `callbacks` route saw run, in order. */
const seen: string[] = [];

@Controller('answered')
class AnsweredController {
  @Get('send-then-throw')
  sendThenThrow(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('a', 'send-then-throw');
    sendBody(res, { sent: true });
    throw new Error('cleanup after the send failed');
  }

  @Get('double-send')
  doubleSend(@Session() session: Session, @Res({ passthrough: true }) res: PlatformResponse) {
    session.setString('a', 'double-send');
    sendBody(res, { first: true });
    return { second: true };
  }

  @Get('write-then-throw')
  writeThenThrow(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('a', 'write-then-throw');
    const raw = rawResponse(res);
    raw.setHeader('content-type', 'text/plain');
    raw.write('partial ');
    throw new Error('boom after the first write');
  }

  /** Changes the status after its first write: the head left with the first write, as without the hold. */
  @Get('status-after-write')
  async statusAfterWrite(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('a', 'status-after-write');
    const raw = rawResponse(res);
    raw.write('partial ');
    await new Promise((resolve) => setTimeout(resolve, 20));
    raw.statusCode = 418;
    raw.end('end');
  }

  /** Waits for its own write and end callbacks, then records that it went on. */
  @Get('callbacks')
  async callbacks(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('a', 'callbacks');
    const raw = rawResponse(res);
    await new Promise<void>((resolve) => raw.write('a', () => resolve()));
    seen.push('written');
    await new Promise<void>((resolve) => raw.end('b', () => resolve()));
    seen.push('ended');
  }

  @Get('read')
  read(@Session() session: Session) {
    return { a: session.getString('a') ?? null };
  }
}

async function start(options: SessionModuleOptions): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [AnsweredController] })
  class AnsweredModule {}
  const ref = await Test.createTestingModule({ imports: [AnsweredModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

/** GETs `paths` one after the other on one keep-alive connection: a response that outgrows its framing breaks the next. */
async function onOneConnection(url: string, paths: string[]) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const replies: { status: number; body: string; cookie?: string }[] = [];
    for (const path of paths) {
      replies.push(
        await new Promise((resolve, reject) => {
          const req = httpRequest(`${url}${path}`, { agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body,
                cookie: res.headers['set-cookie']?.[0]?.split(';')[0],
              }),
            );
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end();
        }),
      );
    }
    return replies;
  } finally {
    agent.destroy();
  }
}

describe('a route that answered and then threw, or answered twice, while the commit held its response', () => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => ({ app, url } = await start({ store: new SlowCommits() })));
  afterAll(() => app.close());

  it.each([
    ['send-then-throw', { sent: true }],
    ['double-send', { first: true }],
  ])('%s: the first answer goes out with the session cookie; the process lives on', async (route, body) => {
    const [reply, next] = await onOneConnection(url, [`/answered/${route}`, '/answered/read']);
    expect({ status: reply.status, body: JSON.parse(reply.body) as unknown }).toEqual({ status: 200, body });
    expect(next.status).toBe(200); // the connection and the process are fine
    const read = await request(url).get('/answered/read').set('Cookie', reply.cookie!).expect(200);
    expect(read.body).toEqual({ a: route });
  });

  it('write-then-throw: the partial body, framed as written; the next response on the connection is whole', async () => {
    const [reply, next] = await onOneConnection(url, ['/answered/write-then-throw', '/answered/read']);
    expect({ status: reply.status, body: reply.body }).toEqual({ status: 200, body: 'partial ' });
    expect({ status: next.status, body: JSON.parse(next.body) as unknown }).toEqual({
      status: 200,
      body: { a: null },
    });
  });

  it('a status set after the first write does not change the head that write sent', async () => {
    const [reply] = await onOneConnection(url, ['/answered/status-after-write']);
    expect({ status: reply.status, body: reply.body }).toEqual({ status: 200, body: 'partial end' });
  });
});

describe('a failed commit replaces a response whose writer waits for its callbacks', () => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => ({ app, url } = await start({ store: new FailingCommits() })));
  afterAll(() => app.close());

  it('the 503 goes out, and the route’s write and end callbacks still run (its code after them is not stuck)', async () => {
    seen.length = 0;
    const res = await request(url).get('/answered/callbacks').timeout(5_000);
    expect(res.status).toBe(503);
    for (let waited = 0; seen.length < 2 && waited < 2_000; waited += 20)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual(['written', 'ended']);
  });
});
