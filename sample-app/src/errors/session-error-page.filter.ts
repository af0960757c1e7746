import { Catch, HttpException, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { SessionMovedError, SessionUnavailableError, UserSessionsUnavailableError } from 'nest-session-state';
import { PAGES, page } from '../layout/page.js';
import { prefersHtml } from '../prefs/accept.js';

interface PlatformRequest {
  headers: Record<string, string | string[] | undefined>;
  url?: string;
}

/**
 * The session's errors as a page for a browser (a request whose `Accept` ranks HTML above JSON), with the error's
 * status: the store unavailable (503: nothing was saved, try again) or a form sent while another tab of the same
 * browser signed in or out (409: the session moved to a new key, this form's change was not saved). Other clients
 * get Nest's JSON reply, as without the filter.
 *
 * It sees an error thrown while the route runs: a failed load (`@Session()`), a failed `commit()` or `bind()`, and a
 * failed end-of-route commit behind `SessionStateInterceptor` (`@TempData()` applies it). A route that writes its
 * response itself (`@Res()`) commits before writing (`await session.commit()`): once it wrote, a failed commit is
 * answered by the library's JSON reply, which no filter can replace (docs/session.md).
 */
@Catch(SessionUnavailableError, UserSessionsUnavailableError, SessionMovedError)
export class SessionErrorPageFilter extends BaseExceptionFilter {
  override catch(error: HttpException, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<PlatformRequest>();
    const accept = request.headers.accept;
    if (!prefersHtml(Array.isArray(accept) ? accept.join(',') : accept)) {
      super.catch(error, host);
      return;
    }
    const status = error.getStatus();
    const adapter = this.httpAdapterHost!.httpAdapter;
    const response: unknown = http.getResponse();
    adapter.status(response, status);
    adapter.setHeader(response, 'Cache-Control', 'no-store');
    adapter.render(
      response,
      'error',
      page(undefined, error instanceof SessionMovedError ? 'Not saved' : 'Try again', {
        moved: error instanceof SessionMovedError,
        status,
        backTo: backTo(request),
      }),
    );
  }
}

const FORM_PAGES: Readonly<Record<string, string>> = {
  cart: '/cart',
  prefs: '/prefs/edit',
  customers: '/customers/create',
  login: '/account',
  logout: '/account',
  account: '/account', // the devices list's revoke buttons
};

/**
 * Where the page's link goes: a page of the nav itself (a GET), the page a form was sent from (`/cart/add` →
 * `/cart`), else home. Never the raw request path, so the link cannot point elsewhere (`//host`).
 */
function backTo(request: PlatformRequest): string {
  const path = (request.url ?? '/').split('?')[0] ?? '/';
  if (PAGES.some((p) => p.href === path)) return path;
  return FORM_PAGES[path.split('/')[1] ?? ''] ?? '/';
}
