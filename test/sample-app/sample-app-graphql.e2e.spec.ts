/**
 * The sample app's `POST /graphql` (Apollo on Express, Mercurius on Fastify): `{ counter }` reads the
 * per-session counter of `GET /counter`, `mutation { increment }` adds one; both paths see one counter
 * in one session. Once per platform (HTTP_ADAPTER).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CookieJar } from '../support/cookie-jar.js';
import { BUILD_TIMEOUT_MS, ensureBuilt } from './support/build.js';
import { SAMPLE_APP_PLATFORMS } from './support/platforms.js';
import { SampleAppProcess } from './support/sample-app.process.js';

/** One visitor: a cookie jar shared by its REST and GraphQL requests. */
class Visitor {
  private readonly jar = new CookieJar();

  constructor(private readonly app: SampleAppProcess) {}

  async counter(): Promise<number> {
    const res = await fetch(`${this.app.url}/counter`, { headers: this.headers() });
    this.keep(res);
    expect(res.status).toBe(200);
    return ((await res.json()) as { count: number }).count;
  }

  async graphql(query: string): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.app.url}/graphql`, {
      method: 'POST',
      headers: { ...this.headers(), 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    this.keep(res);
    return { status: res.status, body: await res.json() };
  }

  private headers(): Record<string, string> {
    const cookie = this.jar.header();
    return cookie ? { cookie } : {};
  }

  private keep(res: Response): void {
    this.jar.update({ headers: { 'set-cookie': res.headers.getSetCookie() } });
  }
}

describe.each(SAMPLE_APP_PLATFORMS)('sample app on %s: the counter over GraphQL', (platform) => {
  let app: SampleAppProcess;

  beforeAll(async () => {
    await ensureBuilt();
    // As npm start runs it: Jest's NODE_ENV=test would hide what Apollo does outside production and test.
    app = await SampleAppProcess.start({ env: { HTTP_ADAPTER: platform, NODE_ENV: 'development' } });
  }, BUILD_TIMEOUT_MS);
  afterAll(() => app?.stop());

  test('{ counter } and mutation { increment } share the counter of GET /counter in one session', async () => {
    const visitor = new Visitor(app);
    expect(await visitor.graphql('{ counter }')).toEqual({ status: 200, body: { data: { counter: 0 } } });
    expect(await visitor.counter()).toBe(1);
    expect(await visitor.graphql('{ counter }')).toEqual({ status: 200, body: { data: { counter: 1 } } });
    expect(await visitor.graphql('mutation { increment }')).toEqual({
      status: 200,
      body: { data: { increment: 2 } },
    });
    expect(await visitor.counter()).toBe(3);
    expect(await visitor.graphql('mutation { increment }')).toEqual({
      status: 200,
      body: { data: { increment: 4 } },
    });
    expect(await visitor.graphql('{ counter }')).toEqual({ status: 200, body: { data: { counter: 4 } } });
  });

  test('an error reply carries no stack trace (Apollo adds one outside production unless told not to)', async () => {
    const { status, body } = await new Visitor(app).graphql('{ counter');
    expect(status).toBe(400);
    expect(JSON.stringify(body)).toContain('Syntax Error');
    expect(JSON.stringify(body)).not.toMatch(/stacktrace|\s+at /);
  });

  test('a mutation starts the session (its cookie comes with the GraphQL reply); another visitor has its own counter', async () => {
    const first = new Visitor(app);
    expect(await first.graphql('mutation { increment }')).toEqual({
      status: 200,
      body: { data: { increment: 1 } },
    });
    expect(await first.counter()).toBe(2);
    const second = new Visitor(app);
    expect(await second.graphql('{ counter }')).toEqual({ status: 200, body: { data: { counter: 0 } } });
  });
});
