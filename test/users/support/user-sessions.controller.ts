import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  UnauthorizedException,
} from '@nestjs/common';
import { Session, UserSessions } from 'nest-session-state';
import { gate } from '../../support/apps/gated-session.controller.js';

/** Sign-in, the devices list and revocation, as an app wires UserSessions (shared by the users suites). */
@Controller('users')
export class UserSessionsTestController {
  constructor(private readonly userSessions: UserSessions) {}

  @Post('login')
  @HttpCode(200)
  async login(
    @Session() session: Session,
    @Body() body: { user: string; device?: string; metadata?: Record<string, string> },
    @Headers('user-agent') userAgent: string | undefined,
  ) {
    session.regenerate();
    session.setString('user', body.user);
    const metadata: Record<string, string> = { userAgent: userAgent ?? '', ...body.metadata };
    if (body.device !== undefined) metadata.device = body.device;
    // false: a concurrent sign-in's maxSessionsPerUser revoked this one before its bind listed it.
    const bound = await this.userSessions.bind(session, body.user, metadata);
    return { id: session.id, bound };
  }

  /** Loads the session, waits at the gate `gate`, then signs in as `login` does: a sign-in sent twice. */
  @Post('slow-login')
  @HttpCode(200)
  async slowLogin(@Session() session: Session, @Query('gate') at: string, @Body() body: { user: string }) {
    await gate(at).pass();
    session.regenerate();
    session.setString('user', body.user);
    await this.userSessions.bind(session, body.user);
    return { id: session.id };
  }

  /** A sign-in without regenerate() whose session id was read and committed alone first (it is not kept alone). */
  @Post('login-after-id')
  @HttpCode(200)
  async loginAfterId(@Session() session: Session, @Body() body: { user: string }) {
    const id = session.id;
    await session.commit();
    session.setString('user', body.user);
    await this.userSessions.bind(session, body.user);
    return { id };
  }

  /** An anonymous visitor's stored session that carries its id (read) and a value (a cart). */
  @Post('cart')
  @HttpCode(200)
  cart(@Session() session: Session) {
    session.setString('cart', 'items');
    return { id: session.id };
  }

  /**
   * A sign-in without regenerate() that first empties the stored session and commits it (its last value removed,
   * only the id left), then signs in: the request's own commit deleted the stored session before the bind.
   */
  @Post('login-after-empty')
  @HttpCode(200)
  async loginAfterEmpty(@Session() session: Session, @Body() body: { user: string }) {
    session.remove('cart');
    await session.commit();
    session.setString('user', body.user);
    return { id: session.id, bound: await this.userSessions.bind(session, body.user) };
  }

  @Get('me')
  me(@Session() session: Session) {
    return { user: session.getString('user') ?? null, keys: session.keys };
  }

  /**
   * Loads the session, waits at the gate `gate` (test/support/apps/gated-session.controller.ts), then writes: a request in flight while its session is revoked. With
   * `clear=1` it first clears the session and sets the app's own sign-in marker again; with `regenerate=1`
   * it moves the session to a new key first; with `rebind=1` it binds the session again afterwards (as a
   * "rename this device" route records new metadata); with `unbind=1` it unbinds it.
   */
  @Post('slow-write')
  @HttpCode(200)
  async slowWrite(
    @Session() session: Session,
    @Query('gate') at: string,
    @Query('clear') clear?: string,
    @Query('regenerate') regenerate?: string,
    @Query('rebind') rebind?: string,
    @Query('unbind') unbind?: string,
  ) {
    const user = session.getString('user') ?? null;
    const boundTo = this.userSessions.userOf(session);
    await gate(at).pass();
    if (regenerate === '1') session.regenerate();
    if (clear === '1') {
      session.clear();
      if (user !== null) session.setString('user', user);
    }
    session.setString('late', 'written');
    if (rebind === '1' && boundTo !== undefined)
      return { user, bound: await this.userSessions.bind(session, boundTo, { device: 'renamed' }) };
    if (unbind === '1') await this.userSessions.unbind(session);
    return { user };
  }

  /**
   * Loads the session, waits at the gate `gate`, then empties it (its sign-in marker removed), unbinds it (which commits it) and
   * binds it to `to` without regenerate(): a late account switch of a session revoked meanwhile.
   */
  @Post('slow-switch')
  @HttpCode(200)
  async slowSwitch(@Session() session: Session, @Query('gate') at: string, @Query('to') to: string) {
    await gate(at).pass();
    session.remove('user');
    await this.userSessions.unbind(session);
    session.setString('user', to);
    return { bound: await this.userSessions.bind(session, to) };
  }

  /**
   * Signs a bound session in again (regenerate(), then bind()) with a wait at the gate `gate` between the move and the
   * bind's index step: the window bind() itself has between its commit and its index write, held open.
   */
  @Post('slow-relogin')
  @HttpCode(200)
  async slowRelogin(@Session() session: Session, @Query('gate') at: string) {
    const user = this.signedIn(session);
    session.regenerate();
    await session.commit();
    await gate(at).pass();
    return { bound: await this.userSessions.bind(session, user) };
  }

  /** Loads the session, waits at the gate `gate`, then signs out: a sign-out still running while another tab signs in. */
  @Post('slow-logout')
  @HttpCode(200)
  async slowLogout(@Session() session: Session, @Query('gate') at: string) {
    await gate(at).pass();
    await this.userSessions.signOut(session);
    return { ok: true };
  }

  @Get('sessions')
  async sessions(@Session() session: Session) {
    const user = this.signedIn(session);
    return { user, sessions: await this.userSessions.list(user, session) };
  }

  /** Revokes the session `id` of the signed-in user; with `current=1`, passes the request's session as `current`. */
  @Post('revoke/:id')
  @HttpCode(200)
  async revoke(@Session() session: Session, @Param('id') id: string, @Query('current') current?: string) {
    const user = this.signedIn(session);
    return { revoked: await this.userSessions.revoke(user, id, current === '1' ? session : undefined) };
  }

  @Post('revoke-others')
  @HttpCode(200)
  async revokeOthers(@Session() session: Session) {
    this.signedIn(session);
    return { revoked: await this.userSessions.revokeOthers(session) };
  }

  /** Signs out by abandoning the session alone, without UserSessions (docs/user-sessions.md: it needs nothing more). */
  @Post('abandon')
  @HttpCode(200)
  abandon(@Session() session: Session) {
    session.abandon();
    return { ok: true };
  }

  @Post('logout')
  @HttpCode(200)
  async logout(@Session() session: Session) {
    await this.userSessions.signOut(session);
    return { ok: true };
  }

  private signedIn(session: Session): string {
    const user = this.userSessions.userOf(session);
    if (user === undefined) throw new UnauthorizedException('not signed in');
    return user;
  }
}
