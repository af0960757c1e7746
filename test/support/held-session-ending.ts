import request from 'supertest';
import { gate } from './apps/gated-session.controller.js';
import { cookiePair } from './cookie-jar.js';
import type { StallProxy } from './stall-proxy.js';

/** Where a session-ending request goes, and how its held store call is told apart. */
export interface HeldEndingSetup {
  /** The instance whose store connection goes through `proxy`; its request is answered 503 (its wait is shorter). */
  readonly stalling: string;
  /** An instance on the store directly. */
  readonly direct: string;
  readonly proxy: StallProxy;
  /** How long the ending's store call is held: past the stalling instance's wait. */
  readonly holdMs: number;
  /** The value of `field` the store holds for the session of `cookie`. */
  stored(cookie: string, field: string): Promise<string | undefined | null>;
}

/** The session key in a `name=<key>.<signature>` cookie pair. */
function sessionKeyOf(cookie: string): string {
  const signed = cookie.slice(cookie.indexOf('=') + 1);
  return signed.slice(0, signed.lastIndexOf('.'));
}

/**
 * A sign-out or sign-in (`abandon()` or `regenerate()`, through GatedSessionController) whose remove or take is held
 * past the stalling instance's wait: the request answers 503, and once the store runs the held call late, the
 * session is still there, whole (a 503 means nothing happened and nothing will).
 */
export async function expectEndingAnswered503ToDeleteNothing(
  setup: HeldEndingSetup,
  ending: 'abandon' | 'regenerate',
  gateName: string,
): Promise<void> {
  const { stalling, direct, proxy } = setup;
  const cookie = cookiePair(
    await request(direct).post('/set/x').send({ value: 'kept' }).expect(200),
    '.Nest.Session',
  );
  const g = gate(gateName);
  const pending = request(stalling)
    .post(`/gated/${gateName}/${ending}`)
    .set('Cookie', cookie)
    .send({})
    .then((res) => res);
  await Promise.race([
    g.reached(1),
    pending.then((res) => {
      throw new Error(`the request answered ${res.status} before reaching the gate`);
    }),
  ]);
  // Loaded: the next bytes naming the key are the remove or the take (regenerate() writes the new key first).
  const hold = proxy.holdWhen(sessionKeyOf(cookie), setup.holdMs);
  g.release();
  expect((await pending).status).toBe(503);
  if (!hold.engaged) proxy.disarm();
  expect(hold.engaged).toBe(true);
  await hold.answered; // the held remove or take ran in the store, past the app's wait
  expect(await setup.stored(cookie, 'x')).toBe('kept');
  await request(direct).get('/keys').set('Cookie', cookie).expect(200, { x: 'kept' });
}
