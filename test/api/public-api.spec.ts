/**
 * The public API is what the package's two entries export by name, and nothing else:
 * `libs/session-state/src/index.ts` (`nest-session-state`) and `libs/session-state/src/redis.ts`
 * (`nest-session-state/redis`, the classes that load ioredis) and `libs/session-state/src/postgres.ts`
 * (`nest-session-state/postgres`, the classes that load pg). This suite
 * keeps three things in step with it: the runtime module (`import * as api`), `docs/API.md` (every export
 * listed under its area with a description, no stale entries), and the JSDoc of every public symbol
 * (a `/** ... *\/` block right above its declaration, with an `@example`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as mainApi from 'nest-session-state';
import * as redisApi from 'nest-session-state/redis';
import * as postgresApi from 'nest-session-state/postgres';
import * as terminusApi from 'nest-session-state/terminus';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'libs/session-state/src');
const INDEX = join(SRC, 'index.ts');
const REDIS_ENTRY = join(SRC, 'redis.ts');
const POSTGRES_ENTRY = join(SRC, 'postgres.ts');
const TERMINUS_ENTRY = join(SRC, 'terminus.ts');
/** Each entry point of the package, with its runtime module. */
const ENTRIES = [
  { file: INDEX, specifier: 'nest-session-state', module: mainApi },
  { file: REDIS_ENTRY, specifier: 'nest-session-state/redis', module: redisApi },
  { file: POSTGRES_ENTRY, specifier: 'nest-session-state/postgres', module: postgresApi },
  { file: TERMINUS_ENTRY, specifier: 'nest-session-state/terminus', module: terminusApi },
];
const api = { ...mainApi, ...redisApi, ...postgresApi, ...terminusApi };
const API_DOC = join(ROOT, 'docs/API.md');
/** Packages the main entry must not import (statically): apps may not have them. */
const OPTIONAL_PEERS = ['ioredis', 'pg', '@nestjs/terminus', '@opentelemetry/api'];

/** One name exported by index.ts. */
interface PublicExport {
  /** The name users import. */
  name: string;
  /** The name in the declaring module (differs with `export { a as b }`). */
  localName: string;
  /** `export type { X }` or `export { type X }`: no runtime value. */
  typeOnly: boolean;
  /** The module specifier, e.g. `./items/item-key.js`. */
  from: string;
  /** The area comment (`// Request items`) the export line sits under. */
  area: string;
}

function parse(file: string, text = readFileSync(file, 'utf8')): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

/** The nearest `// Area` line comment above `position` in index.ts. */
function areaAt(text: string, position: number): string {
  const above = text.slice(0, position).split('\n');
  for (let i = above.length - 1; i >= 0; i--) {
    const match = /^\/\/\s*(.+?)\s*$/.exec(above[i].trim());
    if (match && !/public API/i.test(match[1])) return match[1];
  }
  return '';
}

/** Parses the export lines of an entry; anything but `export { ... } from '...'` is a problem. */
function readIndex(
  text = readFileSync(INDEX, 'utf8'),
  file = INDEX,
): { exports: PublicExport[]; problems: string[] } {
  const source = parse(file, text);
  const exports: PublicExport[] = [];
  const problems: string[] = [];
  for (const statement of source.statements) {
    const line = source.getLineAndCharacterOfPosition(statement.getStart()).line + 1;
    const where = `index.ts:${line}: ${statement.getText().split('\n')[0]}`;
    if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      if (!clause || !ts.isNamedExports(clause)) {
        problems.push(`${where}: \`export *\` hides what is public; export by name`);
        continue;
      }
      if (!statement.moduleSpecifier || !ts.isStringLiteral(statement.moduleSpecifier)) {
        problems.push(`${where}: re-export from a module ('export { X } from "./x.js"')`);
        continue;
      }
      for (const element of clause.elements) {
        exports.push({
          name: element.name.text,
          localName: (element.propertyName ?? element.name).getText(),
          typeOnly: statement.isTypeOnly || element.isTypeOnly,
          from: statement.moduleSpecifier.text,
          area: areaAt(text, statement.getStart()),
        });
      }
    } else if (ts.isExportAssignment(statement)) {
      problems.push(`${where}: no default export; export by name`);
    } else if (!ts.isImportDeclaration(statement)) {
      problems.push(`${where}: index.ts only re-exports; declare symbols in their own module`);
    }
  }
  // Belt and braces: a textual check too, whatever the parser makes of it.
  if (/^\s*export\s*\*/m.test(text)) problems.push('index.ts contains `export *`');
  return { exports, problems };
}

/** The declarations of `name` in `file` (following re-exports), with the file they are in. */
function declarationsOf(
  file: string,
  name: string,
  seen = new Set<string>(),
): { file: string; nodes: ts.Node[] } {
  if (seen.has(`${file}#${name}`)) return { file, nodes: [] };
  seen.add(`${file}#${name}`);
  const source = parse(file);
  const nodes: ts.Node[] = [];
  for (const statement of source.statements) {
    if (ts.isVariableStatement(statement)) {
      const declares = statement.declarationList.declarations.some(
        (d) => ts.isIdentifier(d.name) && d.name.text === name,
      );
      if (declares) nodes.push(statement);
    } else if (
      (ts.isClassDeclaration(statement) ||
        ts.isFunctionDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement)) &&
      statement.name?.text === name
    ) {
      nodes.push(statement);
    }
  }
  if (nodes.length > 0) return { file, nodes };
  // Not declared here: follow `export { name } from './other.js'`.
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.moduleSpecifier) continue;
    const clause = statement.exportClause;
    if (!clause || !ts.isNamedExports(clause)) continue;
    const element = clause.elements.find((e) => e.name.text === name);
    if (!element) continue;
    const target = moduleFile(file, (statement.moduleSpecifier as ts.StringLiteral).text);
    return declarationsOf(target, (element.propertyName ?? element.name).getText(), seen);
  }
  return { file, nodes: [] };
}

function moduleFile(fromFile: string, specifier: string): string {
  return resolve(dirname(fromFile), specifier.replace(/\.js$/, '.ts'));
}

/** The `/** ... *\/` block right above a declaration (above its decorators, if any), or undefined. */
function jsDocAbove(node: ts.Node): string | undefined {
  const text = node.getSourceFile().getFullText();
  const comments = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  const last = comments.at(-1);
  if (!last || last.kind !== ts.SyntaxKind.MultiLineCommentTrivia) return undefined;
  const comment = text.slice(last.pos, last.end);
  return comment.startsWith('/**') && !comment.startsWith('/**/') ? comment : undefined;
}

/** `- \`Name\` ...` entries of docs/API.md, with the `##` heading each is under. */
type ApiDoc = { entries: Map<string, { area: string; description: string }[]>; areas: string[] };

function readApiDoc(): ApiDoc {
  const entries: ApiDoc['entries'] = new Map();
  const areas: string[] = [];
  let area = '';
  for (const line of readFileSync(API_DOC, 'utf8').split('\n')) {
    const heading = /^##\s+(.+?)\s*$/.exec(line);
    if (heading) {
      area = heading[1];
      areas.push(area);
      continue;
    }
    const entry = /^[-*]\s+`([A-Za-z_$][\w$]*)`(?:\s*\([^)]*\))?\s*(?:[:—–-]\s*)?(.*)$/.exec(line);
    if (entry)
      entries.set(entry[1], [...(entries.get(entry[1]) ?? []), { area, description: entry[2].trim() }]);
  }
  return { entries, areas };
}

const read = ENTRIES.map((entry) => ({ entry, ...readIndex(readFileSync(entry.file, 'utf8'), entry.file) }));
const publicExports = read.flatMap((r) => r.exports);
const problems = read.flatMap((r) => r.problems);
const valueExports = publicExports.filter((e) => !e.typeOnly);
const namesOf = (list: PublicExport[]) => [...new Set(list.map((e) => e.name))].sort();

describe('public API (libs/session-state/src/index.ts)', () => {
  it('exports by name only: no `export *`, no default export, no local declarations', () => {
    expect(problems).toEqual([]);
    expect(publicExports.length).toBeGreaterThan(20);
  });

  it('every export comes from an existing module inside the library, under an area comment', () => {
    const wrong = publicExports
      .filter((e) => !e.from.startsWith('./') || !existsSync(moduleFile(INDEX, e.from)) || e.area === '')
      .map((e) => `${e.name} from ${e.from} (area: ${e.area || 'none'})`);
    expect(wrong).toEqual([]);
  });

  it('no name is exported twice', () => {
    const names = publicExports.map((e) => e.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it.each(read.map((r) => [r.entry.specifier, r] as const))(
    '%s exports at run time exactly the value names of its entry file',
    (_, { entry, exports }) => {
      expect(Object.keys(entry.module).sort()).toEqual(namesOf(exports.filter((e) => !e.typeOnly)));
    },
  );

  it('the main entry reaches no module that imports ioredis, pg, @nestjs/terminus or @opentelemetry/api (optional peers)', () => {
    const reached = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const statement of parse(file).statements) {
        const specifier =
          (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
          statement.moduleSpecifier &&
          ts.isStringLiteral(statement.moduleSpecifier)
            ? statement.moduleSpecifier.text
            : undefined;
        if (specifier !== undefined && OPTIONAL_PEERS.includes(specifier)) {
          throw new Error(`${relative(ROOT, file)} imports ${specifier}`);
        }
        if (specifier?.startsWith('.')) visit(moduleFile(file, specifier));
      }
    };
    expect(() => visit(INDEX)).not.toThrow();
    expect(reached.size).toBeGreaterThan(20);
    expect(() => visit(REDIS_ENTRY)).toThrow(/imports ioredis/);
    reached.clear();
    expect(() => visit(POSTGRES_ENTRY)).toThrow(/imports pg/);
    reached.clear();
    expect(() => visit(TERMINUS_ENTRY)).toThrow(/imports @nestjs\/terminus/);
  });

  it('the library has no import cycle (per-request state sits below the features that use it)', () => {
    const importsOf = (file: string): string[] =>
      parse(file)
        .statements.map((statement) =>
          (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
          statement.moduleSpecifier &&
          ts.isStringLiteral(statement.moduleSpecifier)
            ? statement.moduleSpecifier.text
            : undefined,
        )
        .filter((specifier): specifier is string => specifier?.startsWith('.') === true)
        .map((specifier) => moduleFile(file, specifier));
    const done = new Set<string>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      const at = path.indexOf(file);
      if (at >= 0) {
        cycles.push([...path.slice(at), file].map((f) => relative(ROOT, f)).join(' -> '));
        return;
      }
      if (done.has(file)) return;
      for (const imported of importsOf(file)) visit(imported, [...path, file]);
      done.add(file);
    };
    visit(INDEX, []);
    visit(REDIS_ENTRY, []);
    expect(done.size).toBeGreaterThan(40);
    expect(cycles).toEqual([]);
  });

  it('every value name resolves at run time', () => {
    for (const name of namesOf(valueExports)) {
      expect((api as Record<string, unknown>)[name]).toBeDefined();
    }
  });

  it('type-only exports have no runtime value', () => {
    const typeOnly = namesOf(publicExports.filter((e) => e.typeOnly));
    expect(typeOnly.filter((name) => name in api)).toEqual([]);
  });

  it('internal helpers stay internal', () => {
    const internals = [
      'requestContext',
      'REQUEST_STATE',
      'stateOfRequest',
      'RequestState',
      'RequestStateMiddleware',
      'currentRequestState',
      'requestStateOf',
      'SessionRuntime',
      'SessionLifecycle',
      'SessionInterceptor',
      'SessionInfrastructure',
      'TempDataLifecycle',
      'ConfigurableSessionModule',
      'SESSION_MODULE_OPTIONS',
      'KeyRing',
      'encodeTempData',
      'decodeTempData',
      'resolveSessionOptions',
      'resolveExpiration',
      'MemoryUserSessionIndex',
      'RedisUserSessionIndex',
      'USER_SESSION_SCRIPTS',
      'SESSION_USER_FIELD',
      'guardedSessionId',
      'resolveMaxSessionsPerUser',
    ];
    expect(internals.filter((name) => name in api || publicExports.some((e) => e.name === name))).toEqual([]);
  });

  describe('docs/API.md', () => {
    const doc: ApiDoc = existsSync(API_DOC) ? readApiDoc() : { entries: new Map(), areas: [] };

    it('exists', () => {
      expect(existsSync(API_DOC)).toBe(true);
    });

    it('lists every exported name, values and types, each with a one-line description', () => {
      const missing = namesOf(publicExports).filter((name) => !doc.entries.has(name));
      expect(missing).toEqual([]);
      const undescribed = [...doc.entries].filter(([, list]) => list.some((e) => e.description.length < 10));
      expect(undescribed.map(([name]) => name)).toEqual([]);
    });

    it('lists nothing that is not exported (no stale entries) and each name once', () => {
      const exported = new Set(publicExports.map((e) => e.name));
      expect([...doc.entries.keys()].filter((name) => !exported.has(name))).toEqual([]);
      expect([...doc.entries].filter(([, list]) => list.length > 1).map(([name]) => name)).toEqual([]);
    });

    it('groups names by the same areas as index.ts', () => {
      const indexAreas = [...new Set(publicExports.map((e) => e.area))];
      expect(doc.areas.filter((a) => indexAreas.includes(a))).toEqual(indexAreas);
      const misplaced = publicExports
        .filter((e) => doc.entries.get(e.name)?.[0].area !== e.area)
        .map(
          (e) => `${e.name}: index.ts says "${e.area}", API.md says "${doc.entries.get(e.name)?.[0].area}"`,
        );
      expect(misplaced).toEqual([]);
    });
  });

  describe('README.md API reference', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = /^## API reference\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
    const listed = new Map<string, string>();
    for (const line of section.split('\n')) {
      const area = /^- \*\*(.+?)\*\*:/.exec(line)?.[1];
      if (!area) continue;
      for (const match of line.matchAll(/`([A-Za-z_$][\w$]*)`/g)) listed.set(match[1], area);
    }

    it('names every export under its area, and nothing else', () => {
      expect(section).not.toBe('');
      const wrong = publicExports.filter((e) => listed.get(e.name) !== e.area).map((e) => e.name);
      expect(wrong).toEqual([]);
      const exported = new Set(publicExports.map((e) => e.name));
      expect([...listed.keys()].filter((name) => !exported.has(name))).toEqual([]);
    });
  });

  describe('JSDoc', () => {
    const located = publicExports.map((e) => ({
      ...e,
      ...declarationsOf(moduleFile(INDEX, e.from), e.localName),
    }));

    it('finds the declaration of every export in the module its export line names', () => {
      const lost = located.filter((e) => e.nodes.length === 0).map((e) => `${e.name} (from ${e.from})`);
      expect(lost).toEqual([]);
    });

    it('every exported value symbol has a /** */ block right above its declaration', () => {
      const undocumented = located
        .filter((e) => !e.typeOnly)
        .flatMap((e) => e.nodes.filter((node) => !jsDocAbove(node)).map(() => e))
        .map((e) => `${e.name} in ${relative(ROOT, e.file)}`);
      expect(undocumented).toEqual([]);
    });

    it('every exported type has a /** */ block too', () => {
      const undocumented = located
        .filter((e) => e.typeOnly)
        .flatMap((e) => e.nodes.filter((node) => !jsDocAbove(node)).map(() => e))
        .map((e) => `${e.name} in ${relative(ROOT, e.file)}`);
      expect(undocumented).toEqual([]);
    });

    it('every public symbol has an @example in its JSDoc', () => {
      const withoutExample = located
        .filter(
          (e) => e.nodes.length > 0 && !e.nodes.some((node) => /@example\b/.test(jsDocAbove(node) ?? '')),
        )
        .map((e) => `${e.name} in ${relative(ROOT, e.file)}`);
      expect(withoutExample).toEqual([]);
    });
  });

  describe('the checks themselves (synthetic sources)', () => {
    it.each([
      ["export * from './x.js';", 'export *'],
      ["export * as things from './x.js';", 'export *'],
      ['export default class X {}', 'index.ts only re-exports'],
      ['const X = 1;\nexport default X;', 'no default export'],
      ['export const x = 1;', 'index.ts only re-exports'],
      ['const y = 1;\nexport { y };', 're-export from a module'],
    ])('flags %j', (text, problem) => {
      expect(readIndex(text).problems.join('\n')).toContain(problem);
    });

    it('reads names, aliases, type-only exports and areas', () => {
      const { exports, problems } = readIndex(
        "// Area one\nexport { A, type B, C as D } from './a.js';\n// Area two\nexport type { E } from './e.js';\n",
      );
      expect(problems).toEqual([]);
      expect(exports).toEqual([
        { name: 'A', localName: 'A', typeOnly: false, from: './a.js', area: 'Area one' },
        { name: 'B', localName: 'B', typeOnly: true, from: './a.js', area: 'Area one' },
        { name: 'D', localName: 'C', typeOnly: false, from: './a.js', area: 'Area one' },
        { name: 'E', localName: 'E', typeOnly: true, from: './e.js', area: 'Area two' },
      ]);
    });

    it('finds a JSDoc block only when it is right above the declaration (above its decorators)', () => {
      const source = parse(
        'synthetic.ts',
        [
          '/** Documented, decorated. @example new A() */',
          '@Injectable()',
          'export class A {}',
          '// a line comment is not JSDoc',
          'export class B {}',
          '/* neither is a plain block comment */',
          'export const c = 1;',
          'export function d() {}',
          '/** This documents x, not E. */',
          'const x = 1;',
          'export class E {}',
          '/**',
          ' * Multi-line.',
          ' * @example f()',
          ' */',
          'export function f() {}',
        ].join('\n'),
      );
      const docs = Object.fromEntries(
        source.statements
          .filter(
            (s) =>
              ts.canHaveModifiers(s) &&
              ts.getModifiers(s)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword),
          )
          .map((s) => {
            const name = ts.isVariableStatement(s)
              ? s.declarationList.declarations[0].name.getText()
              : (s as ts.ClassDeclaration).name!.text;
            return [name, jsDocAbove(s) ?? null];
          }),
      );
      expect(docs.A).toContain('@example');
      expect(docs.B).toBeNull();
      expect(docs.c).toBeNull();
      expect(docs.d).toBeNull();
      expect(docs.E).toBeNull();
      expect(docs.f).toContain('@example f()');
    });
  });
});
