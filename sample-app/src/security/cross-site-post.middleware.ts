import type { IncomingHttpHeaders } from 'node:http';
import { ForbiddenException, Injectable, type NestMiddleware } from '@nestjs/common';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses a state-changing request that a browser sent from another site or origin (403). SameSite=Lax keeps the
 * session cookie off such a post, but the post still runs and the browser keeps the Set-Cookie of its answer: a
 * forged sign-in would put the visitor in the attacker's account (login CSRF), and any forged form would replace the
 * visitor's session cookie with a new session's. Clients that send neither header (curl, fetch from Node) carry no
 * visitor's cookies, so they pass.
 */
@Injectable()
export class CrossSitePostMiddleware implements NestMiddleware {
  use(
    req: { method?: string; headers: IncomingHttpHeaders },
    _res: unknown,
    next: (error?: unknown) => void,
  ): void {
    if (!SAFE_METHODS.has(req.method ?? 'GET') && isCrossOrigin(req.headers)) {
      throw new ForbiddenException('This form was sent from another site: refused.');
    }
    next();
  }
}

/**
 * `Sec-Fetch-Site` when the browser sends it (anything but `same-origin`, including a sibling subdomain's
 * `same-site`, is refused); else `Origin` against `Host` (browsers send no Sec-Fetch-* to plain-HTTP hosts other
 * than localhost). An opaque origin (`Origin: null`) is not a URL, so it is refused too.
 */
export function isCrossOrigin(headers: IncomingHttpHeaders): boolean {
  const fetchSite = headers['sec-fetch-site'];
  if (fetchSite !== undefined) return fetchSite !== 'same-origin' && fetchSite !== 'none';
  const origin = headers.origin;
  if (origin === undefined) return false;
  return !URL.canParse(origin) || new URL(origin).host !== headers.host;
}
