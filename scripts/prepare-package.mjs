// `npm pack` / `npm publish` of libs/session-state run this (its prepack script), so a tarball always
// carries a fresh build: dist/ rebuilt from src/ (the ES modules, and the CommonJS build in dist/cjs), and the repository's README, LICENSE, CHANGELOG, SECURITY and
// docs copied beside it. Links in the copied Markdown that point at files the package does not ship
// (the benchmark, contributor docs, screenshots) become plain text, so none is broken in the tarball.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = join(ROOT, 'libs/session-state');
const DOCS = ['docs'];
// SECURITY.md too: the README, the CHANGELOG's upgrade notes and the docs send users there (secret rotation).
const COPIED = ['README.md', 'LICENSE', 'CHANGELOG.md', 'SECURITY.md'];

rmSync(join(PACKAGE, 'dist'), { recursive: true, force: true });
const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(PACKAGE, 'tsconfig.lib.json')], { stdio: 'inherit' });
execFileSync(process.execPath, [join(ROOT, 'scripts/build-cjs.mjs')], { stdio: 'inherit' });

for (const name of COPIED) {
  if (!existsSync(join(ROOT, name)))
    throw new Error(`prepare-package: ${name} is missing at the repository root`);
}
rmSync(join(PACKAGE, 'docs'), { recursive: true, force: true });
mkdirSync(join(PACKAGE, 'docs'));
const markdown = (dir) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(dir, f));
const shipped = new Set([...COPIED, ...DOCS.flatMap(markdown)]);

/** `[text](target)` stays a link when target is shipped (or absolute), else becomes `text`; images go. */
function relink(text, file) {
  return text.replace(/(!?)\[([^\]]*)\]\(([^)\s]+)\)/g, (link, bang, label, target) => {
    if (/^([a-z]+:|#)/i.test(target)) return link;
    const path = normalize(join(dirname(file), target.split('#')[0]));
    if (shipped.has(relative('.', path))) return link;
    return bang ? '' : label;
  });
}

for (const file of shipped) {
  const source = readFileSync(join(ROOT, file), 'utf8');
  writeFileSync(join(PACKAGE, file), file.endsWith('.md') ? relink(source, file) : source);
}
cpSync(join(ROOT, 'LICENSE'), join(PACKAGE, 'LICENSE'));
console.log(`prepare-package: dist built; copied ${[...shipped].join(', ')}`);
