/**
 * docs/migrating.md shows the bridge that signs in browsers carrying express-session's cookie; the code run by
 * test/session/connect-redis-bridge.e2e.spec.ts is the same text, so the guide shows what is tested.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

describe('docs/migrating.md', () => {
  it('shows the tested bridge middleware, character for character', () => {
    const guide = readFileSync(join(ROOT, 'docs/migrating.md'), 'utf8');
    const shown = /```ts bridge\n([\s\S]*?)```/.exec(guide)?.[1];
    const tested = readFileSync(join(ROOT, 'test/support/apps/connect-redis-bridge.middleware.ts'), 'utf8');
    expect(shown).toBe(tested);
  });
});
