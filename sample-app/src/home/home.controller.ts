import { Controller, Get, Render, UseFilters } from '@nestjs/common';
import { Item, Session } from 'nest-session-state';
import { IS_VERIFIED } from '../verification/verification.middleware.js';
import { page } from '../layout/page.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

/** The seed's session keys (`IndexModel.SessionKeyName` and `SessionKeyAge`). */
export const SESSION_KEY_NAME = '_Name';
export const SESSION_KEY_AGE = '_Age';

@UseFilters(SessionErrorPageFilter)
@Controller()
export class HomeController {
  /**
   * The seed's Index page: a session without a name gets "The Doctor", 73; the page then shows the
   * values read back from the session, and the `isVerified` request item set by the middleware.
   */
  @Get()
  @Render('index')
  index(@Session() session: Session, @Item(IS_VERIFIED) verified: boolean | undefined) {
    if (!session.getString(SESSION_KEY_NAME)) {
      session.setString(SESSION_KEY_NAME, 'The Doctor');
      session.setInt32(SESSION_KEY_AGE, 73);
    }
    return page('home', 'Session state', {
      name: session.getString(SESSION_KEY_NAME),
      age: session.getInt32(SESSION_KEY_AGE),
      verified: verified === true,
      available: session.isAvailable,
      sessionId: session.keys.length > 0 ? session.id : undefined,
      keys: session.keys,
    });
  }

  /** Touches neither session nor TempData: the response sets no cookie. */
  @Get('about')
  @Render('about')
  about(@Item(IS_VERIFIED) verified: boolean | undefined) {
    return page('about', 'About this sample', { verified: verified === true });
  }
}
