import type { EventEmitter } from 'node:events';

/** What the client's events carry to a handler: an error, or nothing. */
type Handler = (value: never) => void;

/** The handlers of one event of one client, and the one listener that calls them. */
interface Shared {
  readonly handlers: Set<Handler>;
  readonly dispatch: (value: unknown) => void;
}

const SHARED = new WeakMap<EventEmitter, Map<string, Shared>>();

/**
 * Adds `handler` for `event` on an app's client that several modules may share (apps open at once on one ioredis
 * client, as in a test suite): the client gets one listener per event whatever the number of modules, so Node's
 * MaxListenersExceededWarning does not fire at the 11th. Returns the removal; the last one removes the listener,
 * leaving the client as it was found.
 */
export function listenShared(client: EventEmitter, event: string, handler: Handler): () => void {
  let events = SHARED.get(client);
  if (!events) SHARED.set(client, (events = new Map<string, Shared>()));
  let shared = events.get(event);
  if (!shared) {
    const handlers = new Set<Handler>();
    const dispatch = (value: unknown): void => {
      for (const each of [...handlers]) (each as (value: unknown) => void)(value);
    };
    events.set(event, (shared = { handlers, dispatch }));
    client.on(event, dispatch);
  }
  const { handlers, dispatch } = shared;
  handlers.add(handler);
  return () => {
    if (!handlers.delete(handler) || handlers.size > 0) return;
    client.off(event, dispatch);
    events.delete(event);
  };
}
