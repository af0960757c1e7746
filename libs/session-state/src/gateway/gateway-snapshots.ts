import { GatewaySessionNotConnectedError } from '../errors/gateway.errors.js';
import type { DistributedSession } from '../session/session.js';

/** One connected client: the session key of its handshake cookie, and its latest snapshot. */
export interface GatewayClientEntry {
  /** The verified key of the handshake's session cookie; undefined without a valid cookie. */
  readonly sessionKey: string | undefined;
  /** The latest snapshot (the last load started, so an older load finishing later never replaces it). */
  current: Promise<DistributedSession>;
}

/**
 * Per-client entries, keyed by the adapter's client object: they go away with the client (weakly held),
 * and `@Session()` in a gateway, which has no injector, reads them here.
 */
export const gatewayClients = new WeakMap<object, GatewayClientEntry>();

/** `@Session()` in a `ws` context: the client's latest snapshot; throws when none was loaded. */
export function gatewaySessionParameter(client: unknown): Promise<DistributedSession> {
  const entry = typeof client === 'object' && client !== null ? gatewayClients.get(client) : undefined;
  if (!entry) throw new GatewaySessionNotConnectedError('@Session()');
  return entry.current;
}
