import { Body, Controller, Get, Post, Redirect, Render } from '@nestjs/common';
import { Session, TempData } from 'nest-session-state';
import { page } from '../layout/page.js';

export const USER_KEY = 'user';
const ERROR_KEY = 'LoginError';
const MAX_USER_LENGTH = 60;

@Controller()
export class AccountController {
  @Get('account')
  @Render('account')
  account(@Session() session: Session, @TempData(ERROR_KEY) error: string | undefined) {
    const established = session.keys.length > 0;
    return page('account', 'Account', {
      user: session.getString(USER_KEY),
      established,
      sessionId: established ? session.id : undefined,
      error,
      maxLength: MAX_USER_LENGTH,
    });
  }

  /**
   * Signs in: the session moves to a new key (a key planted before login is worthless after it, the
   * defence against session fixation) and keeps its data; the new cookie is sent with the redirect.
   */
  @Post('login')
  @Redirect('/account', 302)
  login(@Body('user') rawUser: unknown, @Session() session: Session, @TempData() tempData: TempData): void {
    const user = typeof rawUser === 'string' ? rawUser.trim() : '';
    if (user.length === 0 || user.length > MAX_USER_LENGTH) {
      tempData.set(ERROR_KEY, `Enter a user name of 1 to ${MAX_USER_LENGTH} characters.`);
      return;
    }
    session.regenerate();
    session.setString(USER_KEY, user);
  }

  /** Signs out: the session's data and its cookie are deleted. */
  @Post('logout')
  @Redirect('/account', 302)
  logout(@Session() session: Session): void {
    session.abandon();
  }
}
