import { Controller, Get, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { MemorySessionStore, Session, type SessionChanges } from 'nest-session-state';
import { setImmediate as turn } from 'node:timers/promises';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';

const COOKIE = '.Nest.Session';

/** Records when each commit starts and ends; the first one takes 60 ms, and fails when asked to. */
class RecordingStore extends MemorySessionStore {
  readonly events: string[] = [];
  failFirst = false;
  private commits = 0;

  override async commit(key: string, changes: SessionChanges, idle: number): Promise<void> {
    const n = ++this.commits;
    this.events.push(`start ${n} ${[...changes.set.keys()].sort().join(',')}`);
    if (n === 1) await new Promise((resolve) => setTimeout(resolve, 60));
    try {
      if (n === 1 && this.failFirst) throw new Error('first commit refused');
      await super.commit(key, changes, idle);
    } finally {
      this.events.push(`end ${n}`);
    }
  }

  reset(failFirst: boolean): void {
    this.events.length = 0;
    this.commits = 0;
    this.failFirst = failFirst;
  }
}

@Controller('order')
class CommitOrderController {
  /** A second commit started while the first runs, with a change made after the first began. */
  @Get('twice')
  async twice(@Session() session: Session) {
    session.setString('a', '1');
    const first = session.commit().then(
      () => 'ok',
      () => 'failed',
    );
    await turn(); // the first commit has taken its changes (changes of the same turn are part of it)
    session.setString('b', '2');
    const second = session.commit().then(
      () => 'ok',
      () => 'failed',
    );
    return { first: await first, second: await second };
  }

  /** A commit still running when the handler returns: the end-of-request commit waits for it. */
  @Get('unawaited')
  async unawaited(@Session() session: Session) {
    session.setString('c', '3');
    void session.commit().catch(() => undefined);
    await turn();
    session.setString('d', '4');
    return { ok: true };
  }

  @Get('read')
  read(@Session() session: Session) {
    return Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [k, session.getString(k) ?? null]));
  }
}

describe('successive commits of one request run in order', () => {
  const store = new RecordingStore();
  let app: INestApplication;
  let url: string;
  beforeAll(
    async () => ({ app, url } = await startSessionApp({ store }, { controllers: [CommitOrderController] })),
  );
  afterAll(() => app.close());

  it('the second commit starts after the first ended, and writes what changed after the first began', async () => {
    store.reset(false);
    const res = await request(url).get('/order/twice').expect(200);
    expect(res.body).toEqual({ first: 'ok', second: 'ok' });
    expect(store.events.slice(0, 4)).toEqual(['start 1 a', 'end 1', 'start 2 b', 'end 2']);
    const read = await request(url).get('/order/read').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(read.body).toMatchObject({ a: '1', b: '2' });
  });

  it('after a failed commit the next one still runs, after it, and carries the changes the failure kept', async () => {
    store.reset(true);
    const res = await request(url).get('/order/twice').expect(200);
    expect(res.body).toEqual({ first: 'failed', second: 'ok' });
    expect(store.events.slice(0, 3)).toEqual(['start 1 a', 'end 1', 'start 2 a,b']);
    const read = await request(url).get('/order/read').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(read.body).toMatchObject({ a: '1', b: '2' });
  });

  it('a commit left running by the handler: the response waits for it and the final commit writes the rest', async () => {
    store.reset(false);
    const res = await request(url).get('/order/unawaited').expect(200);
    expect(store.events.slice(0, 4)).toEqual(['start 1 c', 'end 1', 'start 2 d', 'end 2']);
    const read = await request(url).get('/order/read').set('Cookie', cookiePair(res, COOKIE)).expect(200);
    expect(read.body).toMatchObject({ c: '3', d: '4' });
  });
});
