/**
 * docs/postgres.md gives the SQL for teams that migrate by hand: it must be exactly what the store
 * creates at startup (for the default schema and table), so a hand-made table works with it.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresSessionSql } from '../../libs/session-state/src/cache/postgres/postgres-session.sql.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The statements the store runs with `createTable` (schema `public`, table `nest_sessions`), as a SQL script. */
function schemaScript(): string {
  return postgresSessionSql('public', 'nest_sessions')
    .createSchema.map((statement) => `${statement};`)
    .join('\n\n');
}

describe('docs/postgres.md', () => {
  it('shows the schema SQL the store creates, verbatim', () => {
    const doc = readFileSync(join(ROOT, 'docs/postgres.md'), 'utf8');
    const block = /<!-- schema -->\s*```sql\n([\s\S]*?)\n```/.exec(doc)?.[1];
    expect(block).toBe(schemaScript());
  });
});
