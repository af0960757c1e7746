import { redactCredentials } from '../../options/redact-credentials.js';

/** The fields of a `pg` error that name parts of the schema or the failure, never a row's values. */
const KEPT = [
  'code',
  'severity',
  'hint',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'routine',
] as const;

/**
 * What of a `pg` driver error may be kept as the `cause` of the library's errors, which apps log: its class name,
 * message (credentials masked), stack and the fields of {@link KEPT}. Not `detail` (PostgreSQL's "Failing row
 * contains (...)" and "Key (session_key)=(...) already exists" quote stored rows: session keys, their data, user
 * ids), `where`, `internalQuery` nor anything else the driver attached.
 */
export function withoutRowData(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const message = redactCredentials(error.message);
  const kept = new Error(message);
  kept.name = error.name;
  const frames = error.stack?.indexOf('\n    at ') ?? -1;
  kept.stack = `${error.name}: ${message}${frames >= 0 ? error.stack!.slice(frames) : ''}`;
  const source = error as unknown as Record<string, unknown>;
  const target = kept as unknown as Record<string, unknown>;
  for (const field of KEPT) if (source[field] !== undefined) target[field] = source[field];
  return kept;
}
