import { Controller, HttpCode, Post, Query, type INestApplication } from '@nestjs/common';
import { Session, UserSessions } from 'nest-session-state';
import { FailingTakeStore } from '../support/commit-stores.js';
import { startSessionApp } from '../support/apps/session-test.app.js';
import { gate } from '../support/apps/gated-session.controller.js';
import { BrowserClient } from './support/browser-client.js';
import { UserSessionsTestController } from './support/user-sessions.controller.js';
import { SECRETS } from './support/user-sessions.stores.js';

@Controller('step-up')
class StepUpController {
  /** A sign-out by clear() and regenerate(), its commit tried here (failed, caught), then again at the end. */
  @Post('clear-and-move')
  @HttpCode(200)
  async clearAndMove(@Session() session: Session) {
    session.clear();
    session.regenerate();
    try {
      await session.commit();
    } catch {
      // the end-of-request commit tries the move again
    }
    return { ok: true };
  }

  /** A signed-in user's step-up: a new key, its commit tried here (failed, caught), then the gate, then the end. */
  @Post()
  @HttpCode(200)
  async stepUp(@Session() session: Session, @Query('gate') at: string) {
    session.regenerate();
    session.setString('stepped-up', 'yes');
    try {
      await session.commit();
    } catch {
      // the end-of-request commit tries the move again
    }
    await gate(at).pass();
    return { ok: true };
  }
}

/**
 * A move (`regenerate()`) of a bound session whose take failed, tried again by the end-of-request commit after the
 * user's sessions were revoked: the retry must see the revocation, as a first try does, and not bring the session
 * back under a new key, signed in and listed nowhere. Before, the failed try put back the move's rewrite of every
 * value, the bound user's too, which the retry then took for the request's own sign-in.
 */
describe('user sessions: a move whose take failed, retried after a revocation', () => {
  const store = new FailingTakeStore();
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startSessionApp(
      { secrets: SECRETS, store, users: {} },
      { controllers: [UserSessionsTestController, StepUpController] },
    ));
  });
  afterAll(() => app.close());

  it('drops the session: no new cookie signs the browser in, and nothing is listed', async () => {
    const user = 'failed-step-up@example.test';
    const browser = new BrowserClient('StepUp/1');
    await browser.login(url, user);
    store.failures = 1;
    const steppingUp = browser.request(`${url}/step-up?gate=failed-step-up`, 'POST');
    await gate('failed-step-up').reached(1); // its first try of the move failed
    expect(await app.get(UserSessions).revokeAll(user)).toBe(1);
    gate('failed-step-up').release();
    expect((await steppingUp).status).toBe(200);
    expect((await browser.me(url)).user).toBeNull();
    expect(await app.get(UserSessions).list(user)).toEqual([]);
  });

  it('a clear() then regenerate() whose take failed, tried again: still cleared (not signed in again)', async () => {
    const browser = new BrowserClient('ClearMove/1');
    await browser.login(url, 'clear-move@example.test');
    store.failures = 1;
    expect((await browser.request(`${url}/step-up/clear-and-move`, 'POST')).status).toBe(200);
    expect(await browser.me(url)).toEqual({ user: null, keys: [] });
  });
});
