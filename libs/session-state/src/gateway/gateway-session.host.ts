import { SessionReadOnlyError } from '../errors/gateway.errors.js';
import type { SessionHost, SessionLimits } from '../session/session.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

const refuse = (): never => {
  throw new SessionReadOnlyError();
};

/**
 * The host of a gateway's session snapshot: every change is refused with {@link SessionReadOnlyError}
 * before it touches the snapshot (see docs/design-decisions.md, "WebSocket gateways read a snapshot").
 */
@HiddenFromLogs()
export class ReadOnlySessionHost implements SessionHost {
  constructor(readonly limits: SessionLimits) {}

  load(): Promise<void> {
    // A snapshot is attached when it is made; reloading is GatewaySessions.reload(client).
    return Promise.resolve();
  }

  commit(): Promise<void> {
    return Promise.reject(new SessionReadOnlyError());
  }

  beforeEstablish = refuse;
  beforeChange = refuse;
  regenerate = refuse;
  abandon = refuse;
}
