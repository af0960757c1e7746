import { copyOfError } from '../../logging/error-copy.js';

/** The fields of a `pg` error that name parts of the schema or the failure, never a row's values. */
const KEPT = ['code', 'severity', 'hint', 'schema', 'table', 'column', 'dataType', 'constraint', 'routine'];

/**
 * What of a `pg` driver error may be kept as a `cause` ({@link copyOfError}): not `detail` (PostgreSQL's "Failing
 * row contains (...)" and "Key (session_key)=(...) already exists" quote stored rows: session keys, their data, user
 * ids), `where` nor `internalQuery`.
 */
export function withoutRowData(error: unknown): unknown {
  return copyOfError(error, KEPT);
}
