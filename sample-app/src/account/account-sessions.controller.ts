import { Controller, Get, Param, Post, Redirect, UnauthorizedException, UseFilters } from '@nestjs/common';
import { Session, UserSessions } from 'nest-session-state';
import { USER_KEY } from './account.controller.js';
import { devicesOf } from './account-devices.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

/**
 * Who is signed in where (DESIGN.md's contract): the signed-in user's sessions as JSON, and the
 * revocations the Account page's buttons post. A revoked session's next request finds an empty,
 * signed-out session, on whichever instance it lands.
 */
@UseFilters(SessionErrorPageFilter)
@Controller('account/sessions')
export class AccountSessionsController {
  constructor(private readonly userSessions: UserSessions) {}

  /** `{ user, sessions: [{ id, current, createdAt, lastSeenAt, userAgent }] }`; 401 when not signed in. */
  @Get()
  async list(@Session() session: Session) {
    const user = session.getString(USER_KEY);
    if (user === undefined) throw new UnauthorizedException('Not signed in.');
    return { user, sessions: devicesOf(await this.userSessions.list(user, session)) };
  }

  /** Signs every other device of the user out. */
  @Post('revoke-others')
  @Redirect('/account', 302)
  async revokeOthers(@Session() session: Session): Promise<void> {
    if (session.getString(USER_KEY) !== undefined) await this.userSessions.revokeOthers(session);
  }

  /** Signs one device out (the current one too: then this browser is signed out). */
  @Post(':id/revoke')
  @Redirect('/account', 302)
  async revoke(@Session() session: Session, @Param('id') id: string): Promise<void> {
    const user = session.getString(USER_KEY);
    if (user !== undefined) await this.userSessions.revoke(user, id, session);
  }
}
