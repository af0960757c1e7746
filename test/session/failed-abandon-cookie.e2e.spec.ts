/**
 * An abandon whose delete fails in the store (503): the session is still stored. When its key was issued by this
 * response (a sign-in that regenerated and committed, then abandoned the session because binding it to the user
 * failed), the browser must not get that key: it would hold a signed-in session that UserSessions cannot list or
 * revoke. When the key is the browser's own (a sign-out), its cookie stays, so the sign-out can be sent again.
 */
import { Controller, HttpCode, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { MemorySessionStore, Session } from 'nest-session-state';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { cookiePair, findSetCookie } from '../support/cookie-jar.js';

const SECRETS = ['Pk3wT8xZ1pLr6nYc2sWd9hJk5fBg0aEu4iOt7yRz6Q'];
const COOKIE = '.Nest.Session';

/** A memory store whose deletes fail while `failing` is set (an outage between the commit and the abandon). */
class FailingRemoveStore extends MemorySessionStore {
  failing = false;
  override async remove(...args: Parameters<MemorySessionStore['remove']>): Promise<void> {
    if (this.failing) throw new Error('store unreachable');
    return super.remove(...args);
  }
}

@Controller('fails')
class FailingSignInController {
  /** A sign-in as UserSessions.bind() does it when the index step fails: regenerate, commit, then abandon. */
  @Post('sign-in')
  @HttpCode(200)
  async signIn(@Session() session: Session) {
    session.setString('user', 'alice');
    session.regenerate();
    await session.commit();
    session.abandon();
  }

  @Post('sign-out')
  @HttpCode(200)
  signOut(@Session() session: Session) {
    session.abandon();
  }
}

describe('an abandon the store fails to apply (503)', () => {
  const store = new FailingRemoveStore();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startSessionApp(
      { secrets: SECRETS, store },
      { controllers: [FailingSignInController] },
    ));
  });
  afterAll(() => app.close());
  afterEach(() => (store.failing = false));

  /** A browser with a stored session sends `path` while the store fails deletes: 503. Returns its cookie and the answer. */
  const whileDeletesFail = async (path: string) => {
    const cookie = cookiePair(
      await request(url).post('/set/cart').send({ value: 'item' }).expect(200),
      COOKIE,
    );
    store.failing = true;
    const failed = await request(url).post(path).set('Cookie', cookie);
    expect(failed.status).toBe(503);
    return { cookie, failed };
  };

  it('of a key this response issued (a failed sign-in): the cookie goes as a deletion, never the new key', async () => {
    const { failed } = await whileDeletesFail('/fails/sign-in');
    const setCookie = findSetCookie(failed, COOKIE);
    expect(setCookie).toBeDefined();
    expect(setCookie).toMatch(/^\.Nest\.Session=;/);
    expect(setCookie).toMatch(/Expires=Thu, 01 Jan 1970/);
  });

  it("of the browser's own key (a sign-out): its cookie stays, and the sign-out sent again applies", async () => {
    const { cookie, failed } = await whileDeletesFail('/fails/sign-out');
    expect(findSetCookie(failed, COOKIE)).toBeUndefined();
    store.failing = false;
    const retried = await request(url).post('/fails/sign-out').set('Cookie', cookie).expect(200);
    expect(findSetCookie(retried, COOKIE)).toMatch(/^\.Nest\.Session=;/);
    expect((await request(url).get('/keys').set('Cookie', cookie).expect(200)).body).toEqual({});
  });
});
