import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, Logger, type NestMiddleware } from '@nestjs/common';
import { Redis } from 'ioredis';
import { SessionAccessor } from 'nest-session-state';

/** What the old app had: express-session's secrets and cookie name, connect-redis's prefix. */
export const OLD_SESSIONS = {
  secrets: (process.env.OLD_SESSION_SECRETS ?? '').split(',').filter(Boolean),
  cookieName: 'connect.sid',
  prefix: 'sess:',
};

/** The session id in an express-session cookie value signed by one of `secrets` (cookie-signature's format). */
export function oldSessionId(
  cookieHeader: string | undefined,
  secrets: readonly string[],
): string | undefined {
  const pair = (cookieHeader ?? '').split(/;\s*/).find((p) => p.startsWith(`${OLD_SESSIONS.cookieName}=`));
  if (pair === undefined) return undefined;
  let value: string;
  try {
    value = decodeURIComponent(pair.slice(OLD_SESSIONS.cookieName.length + 1));
  } catch {
    return undefined;
  }
  const dot = value.lastIndexOf('.');
  if (!value.startsWith('s:') || dot < 2) return undefined;
  const id = value.slice(2, dot);
  const signature = Buffer.from(value.slice(dot + 1));
  for (const secret of secrets) {
    const expected = Buffer.from(createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, ''));
    if (expected.length === signature.length && timingSafeEqual(expected, signature)) return id;
  }
  return undefined;
}

/**
 * Signs in, once, a browser that still carries the old app's session cookie and has no session here yet: what the old
 * session held is copied into a new session (under a new key), the old one is deleted in the same Redis command (a
 * sign-out here cannot bring it back), and the old cookie is deleted.
 */
@Injectable()
export class ConnectRedisBridge implements NestMiddleware {
  private readonly logger = new Logger(ConnectRedisBridge.name);

  constructor(
    private readonly sessions: SessionAccessor,
    private readonly redis: Redis,
  ) {}

  async use(req: IncomingMessage, res: ServerResponse, next: () => void): Promise<void> {
    const id = oldSessionId(req.headers.cookie, OLD_SESSIONS.secrets);
    try {
      if (id !== undefined) await this.importOnce(id, res);
    } catch (error) {
      // The user is simply not signed in: never a failed request.
      this.logger.warn(`Old session not imported: ${(error as Error).message}`);
    }
    next();
  }

  private async importOnce(id: string, res: ServerResponse): Promise<void> {
    const stored = await this.redis.getdel(`${OLD_SESSIONS.prefix}${id}`);
    res.appendHeader(
      'Set-Cookie',
      `${OLD_SESSIONS.cookieName}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT`,
    );
    if (stored === null) return;
    // Yours: whatever the old app kept in req.session.
    const old = JSON.parse(stored) as { passport?: { user?: string | number }; cart?: unknown };
    const session = await this.sessions.load();
    // A browser that has a session here already (it used both apps during the rollout) keeps it: the old session
    // would overwrite what the user did since on this side.
    if (session.keys.length > 0) return;
    session.regenerate(); // signs in: a new key, as on any sign-in
    if (old.passport?.user !== undefined) session.setString('user', String(old.passport.user));
    if (old.cart !== undefined) session.set('cart', old.cart);
  }
}
