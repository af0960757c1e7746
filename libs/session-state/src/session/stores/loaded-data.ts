import { types } from 'node:util';
import type { SessionData } from './session-store.interface.js';

/**
 * What a store's `load` answered, checked against the contract: a custom store answering a plain object failed later
 * with "this.data is not iterable", naming nothing to fix. `null` is no session, as `undefined` is.
 */
export function loadedData(data: SessionData | null | undefined): SessionData | undefined {
  if (data == null) return undefined;
  // Not instanceof: a Map made in another realm (a test's vm context, structuredClone) is one too.
  if (types.isMap(data)) return data;
  throw new TypeError(
    'SessionStore.load must answer a Map of field names to bytes (Uint8Array), or undefined when no session is ' +
      `stored (got ${Array.isArray(data) ? 'an array' : typeof data}): see SessionStore in docs/API.md.`,
  );
}
