import type { UserSessionInfo } from 'nest-session-state';

/** Longest user agent recorded at sign-in (the library allows 2048 characters of metadata in all). */
export const USER_AGENT_MAX = 300;

/** One device of the signed-in user, as `GET /account/sessions` and the Account page show it. */
export interface AccountDevice {
  id: string;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  userAgent: string;
}

/** The user's sessions as devices: the public session id, times in ISO 8601, the recorded user agent. */
export function devicesOf(sessions: readonly UserSessionInfo[]): AccountDevice[] {
  return sessions.map((s) => ({
    id: s.id,
    current: s.current,
    createdAt: s.createdAt.toISOString(),
    lastSeenAt: s.lastSeenAt.toISOString(),
    userAgent: s.metadata.userAgent ?? '',
  }));
}
