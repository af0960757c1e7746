import { Body, Controller, Get, Headers, Post, Redirect, Render, UseFilters } from '@nestjs/common';
import { Session, TempData, UserSessions } from 'nest-session-state';
import { page } from '../layout/page.js';
import { devicesOf, USER_AGENT_MAX } from './account-devices.js';
import { SignInMovedFilter } from './sign-in-moved.filter.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

export const USER_KEY = 'user';
const ERROR_KEY = 'LoginError';
const MAX_USER_LENGTH = 60;

@UseFilters(SessionErrorPageFilter)
@Controller()
export class AccountController {
  constructor(private readonly userSessions: UserSessions) {}

  @Get('account')
  @Render('account')
  async account(@Session() session: Session, @TempData(ERROR_KEY) error: string | undefined) {
    const established = session.keys.length > 0;
    const user = session.getString(USER_KEY);
    return page('account', 'Account', {
      user,
      devices: user === undefined ? [] : devicesOf(await this.userSessions.list(user, session)),
      established,
      sessionId: established ? session.id : undefined,
      error,
      maxLength: MAX_USER_LENGTH,
    });
  }

  /**
   * Signs in: the session moves to a new key (a key planted before login is worthless after it, the
   * defence against session fixation) and keeps its data; the new cookie is sent with the redirect.
   * The session is then bound to the user, with the browser's user agent, for the devices list. Of two sign-ins
   * sent at once from two tabs, the one refused goes back to the account page (SignInMovedFilter).
   */
  @Post('login')
  @Redirect('/account', 302)
  @UseFilters(SignInMovedFilter)
  async login(
    @Body('user') rawUser: unknown,
    @Session() session: Session,
    @TempData() tempData: TempData,
    @Headers('user-agent') userAgent: string | undefined,
  ): Promise<void> {
    const user = typeof rawUser === 'string' ? rawUser.trim() : '';
    // A lone surrogate (a "\ud800" escape in JSON): UserSessions refuses such a user id with a TypeError.
    if (user.length === 0 || user.length > MAX_USER_LENGTH || /\p{Cs}/u.test(user)) {
      tempData.set(ERROR_KEY, `Enter a user name of 1 to ${MAX_USER_LENGTH} characters.`);
      return;
    }
    session.regenerate();
    session.setString(USER_KEY, user);
    await this.userSessions.bind(session, user, { userAgent: (userAgent ?? '').slice(0, USER_AGENT_MAX) });
  }

  /** Signs out: the session leaves the devices list, its data and its cookie are deleted. */
  @Post('logout')
  @Redirect('/account', 302)
  async logout(@Session() session: Session): Promise<void> {
    await this.userSessions.signOut(session);
  }
}
