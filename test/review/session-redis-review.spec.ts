/**
 * Review findings on the Redis session store's Lua scripts. A failing test here is a library bug.
 */
import { Controller, HttpCode, Param, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Session } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair } from '../support/cookie-jar.js';
import { RedisServerProcess } from '../support/redis/index.js';

const COOKIE = '.Nest.Session';

/** Set by the test: pauses Redis writes so a commit stays in flight. */
let pauseWrites: () => Promise<void> = () => Promise.resolve();

@Controller('review')
class ManyKeysController {
  @Post('write-during-commit')
  @HttpCode(200)
  async writeDuringCommit(@Session() session: Session) {
    session.setString('a', '1');
    await pauseWrites();
    const committing = session.commit();
    await new Promise((r) => setTimeout(r, 50));
    session.setString('b', '2');
    await committing;
    return { ok: true };
  }

  @Post('many/:n')
  @HttpCode(200)
  many(@Session() session: Session, @Param('n') n: string) {
    for (let i = 0; i < Number(n); i++) session.setString(`k${i}`, 'v');
    return { keys: session.keys.length };
  }
}

describe('review: Redis session store', () => {
  let server: RedisServerProcess;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    server = await RedisServerProcess.start();
    ({ app, url } = await startSessionApp(
      {
        redis: { host: server.host, port: server.port, applicationName: 'many' },
        session: { maxKeys: 10_000, maxSessionBytes: 4 * 1024 * 1024 },
      },
      { controllers: [ManyKeysController] },
    ));
  });
  afterAll(async () => {
    await app.close();
    await server.stop();
  });

  it('a value set while an explicit commit() is in flight is committed too (no lost update within a request)', async () => {
    const cookie = cookiePair(await request(url).post('/set/seed').expect(200), COOKIE);
    pauseWrites = () => server.pause(200, 'WRITE');
    try {
      await request(url).post('/review/write-during-commit').set('Cookie', cookie).expect(200);
    } finally {
      pauseWrites = () => Promise.resolve();
    }
    const { body } = await request(url).get('/keys').set('Cookie', cookie).expect(200);
    expect(body).toEqual({ seed: 'seed', a: '1', b: '2' });
  });

  it('a commit of 4,000 changed keys (allowed by session.maxKeys) is stored, not a 503', async () => {
    const res = await request(url).post('/review/many/4000');
    expect(res.status).toBe(200);
    const key = cookiePair(res, COOKIE).split('=')[1].split('.')[0];
    expect(await server.admin().hlen(`{many_${key}}_Data`)).toBe(4000);
  });

  it('regenerate() of a session with 4,000 keys (rewrites every field) works', async () => {
    const first = await request(url).post('/review/many/3990').expect(200); // just under the limit
    const cookie = cookiePair(first, COOKIE);
    await request(url).post('/set/extra1').set('Cookie', cookie).expect(200);
    for (let i = 2; i <= 10; i++) await request(url).post(`/set/extra${i}`).set('Cookie', cookie).expect(200);
    const res = await request(url).post('/regenerate').set('Cookie', cookie);
    expect(res.status).toBe(200);
  });
});
