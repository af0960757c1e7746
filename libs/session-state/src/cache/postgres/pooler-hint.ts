/**
 * A named prepared statement that already exists (42P05) or does not (26000) on the server connection: a pooler in
 * transaction mode (PgBouncer, Supavisor) moved the connection's statements between server connections.
 */
export function poolerHint(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code !== '42P05' && code !== '26000') return '';
  return (
    ' (a pooler in transaction mode, such as PgBouncer with pool_mode = transaction, hands each transaction any server ' +
    'connection, where the named statements this store prepares are unknown or already taken: set ' +
    'postgres.preparedStatements to false)'
  );
}
