import { Catch, Injectable, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { SessionMovedError } from 'nest-session-state';

/**
 * Two sign-ins sent at once from two tabs of one browser: the other one moved the session to its new key first, so
 * this one is refused (409 `SessionMovedError`, nothing of it saved). Back to the account page, which shows the
 * sign-in that won, instead of the library's JSON. The route needs `SessionStateInterceptor` (`@TempData()` applies
 * it) for this answer to stand: without it a redirect reads as success and the library answers the 409 itself.
 */
@Catch(SessionMovedError)
@Injectable()
export class SignInMovedFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(_error: SessionMovedError, host: ArgumentsHost): void {
    this.adapterHost.httpAdapter.redirect(host.switchToHttp().getResponse(), 303, '/account');
  }
}
