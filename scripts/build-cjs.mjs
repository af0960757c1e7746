// The CommonJS build of the library, dist/cjs/, beside the ES module build (dist/): what `require()` gets through
// the package's `require` export condition. Node loads the ES build through require() too (require(esm)), but
// Jest's CommonJS mode (a Nest 11 app's tests) has its own module loader, which cannot; dist/cjs serves it.
// The same sources and program options, emitted as CommonJS, declarations included (read as CommonJS in this
// folder, so a CommonJS app resolving with node16 or nodenext type-checks against what it runs; node10 reads the ES
// build's, which are the same). The one ES-only
// construct, `import.meta.url`, becomes the file URL of `__filename`. Run by `npm run build` and by the package's
// prepack (scripts/prepare-package.mjs).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = join(ROOT, 'libs/session-state');
const OUT = join(PACKAGE, 'dist/cjs');
const ts = createRequire(join(ROOT, 'package.json'))('typescript');

const config = ts.getParsedCommandLineOfConfigFile(
  join(PACKAGE, 'tsconfig.lib.json'),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => fail([diagnostic]),
  },
);
const options = {
  ...config.options,
  module: ts.ModuleKind.CommonJS,
  // Resolution only: imports are emitted as written (`./x.js`). node10 is deprecated in TypeScript 6 (TS5107).
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  outDir: OUT,
  // The ES build type-checks these sources; here only the emit differs.
  noCheck: true,
};

/** `import.meta.url` as CommonJS has it. */
function importMetaUrl(context) {
  const { factory } = context;
  const visit = (node) => {
    if (
      ts.isPropertyAccessExpression(node) &&
      ts.isMetaProperty(node.expression) &&
      node.expression.keywordToken === ts.SyntaxKind.ImportKeyword &&
      node.name.text === 'url'
    ) {
      // require('node:url').pathToFileURL(__filename).href
      const url = factory.createCallExpression(factory.createIdentifier('require'), undefined, [
        factory.createStringLiteral('node:url'),
      ]);
      const pathToFileURL = factory.createCallExpression(
        factory.createPropertyAccessExpression(url, 'pathToFileURL'),
        undefined,
        [factory.createIdentifier('__filename')],
      );
      return factory.createPropertyAccessExpression(pathToFileURL, 'href');
    }
    return ts.visitEachChild(node, visit, context);
  };
  return (file) => ts.visitNode(file, visit);
}

function fail(diagnostics) {
  const host = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  };
  console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
  process.exit(1);
}

rmSync(OUT, { recursive: true, force: true });
const program = ts.createProgram(config.fileNames, options);
const result = program.emit(undefined, undefined, undefined, false, { before: [importMetaUrl] });
const errors = [
  ...config.errors,
  ...program.getOptionsDiagnostics(),
  ...program.getSyntacticDiagnostics(),
  ...result.diagnostics,
].filter((d) => d.category === ts.DiagnosticCategory.Error);
if (errors.length > 0) fail(errors);
mkdirSync(OUT, { recursive: true });
// The folder's files are CommonJS although the package is "type": "module".
writeFileSync(join(OUT, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
console.log(`build-cjs: ${program.getRootFileNames().length} files emitted to ${OUT}`);
