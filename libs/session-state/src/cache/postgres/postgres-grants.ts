/**
 * The table privileges a user lacks, from `privilegesSql`'s `PRIVILEGE table` texts, one entry per table in the
 * order found: `SELECT, DELETE on "public"."sessions_users"`.
 */
export function missingGrants(missing: readonly string[]): string[] {
  const byTable = new Map<string, string[]>();
  for (const entry of missing) {
    const space = entry.indexOf(' ');
    const table = entry.slice(space + 1);
    const privileges = byTable.get(table) ?? [];
    privileges.push(entry.slice(0, space));
    byTable.set(table, privileges);
  }
  return [...byTable].map(([table, privileges]) => `${privileges.join(', ')} on ${table}`);
}
