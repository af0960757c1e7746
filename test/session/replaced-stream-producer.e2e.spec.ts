import http from 'node:http';
import { Controller, Get, Sse, type INestApplication, type MessageEvent } from '@nestjs/common';
import { finalize, interval, map, type Observable } from 'rxjs';
import { Session } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { FailingCommits } from '../support/commit-stores.js';

/** What the event stream's producer did: events made, and whether it was torn down. */
const producer = { events: 0, tornDown: false };

@Controller('replaced')
class ReplacedStreamController {
  @Sse('events')
  events(@Session() session: Session): Observable<MessageEvent> {
    session.setString('name', 'sse');
    return interval(20).pipe(
      map((i) => {
        producer.events++;
        return { data: { i } };
      }),
      finalize(() => (producer.tornDown = true)),
    );
  }

  @Get('ping')
  ping() {
    return { ok: true };
  }
}

/** A GET over `agent` (a browser's or a reverse proxy's pooled connection): its status and body. */
function get(agent: http.Agent, url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A failed commit replaces a streamed response (an `@Sse()` stream) with the JSON 503: the route never learns, as
 * Nest stops an event stream's producer only when the connection closes. Over a kept-alive connection (a browser's
 * pool, a reverse proxy's upstream keep-alive) the producer would run, its events dropped, for as long as that
 * connection lives.
 */
describe('a streamed response replaced by the error reply of a failed commit', () => {
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startSessionApp(
      { store: new FailingCommits() },
      { controllers: [ReplacedStreamController] },
    ));
  });
  afterAll(() => app.close());

  it("an @Sse() stream answered 503: its producer is torn down, while the client's pooled connection stays in use", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answer = await get(agent, url, '/replaced/events');
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body)).toMatchObject({ statusCode: 503, code: 'SESSION_UNAVAILABLE' });
      // The client goes on with other requests, as a page does; its pool keeps a connection open if it can.
      for (let i = 0; i < 4 && !producer.tornDown; i++) {
        await sleep(100);
        expect((await get(agent, url, '/replaced/ping')).status).toBe(200);
      }
      const made = producer.events;
      await sleep(100);
      expect(producer.tornDown).toBe(true);
      expect(producer.events).toBe(made); // no event made for nobody
    } finally {
      agent.destroy();
    }
  });
});
