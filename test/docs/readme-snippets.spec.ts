/**
 * The README's TypeScript blocks compile as written. Every ```ts block of README.md (and of docs/*.md) is
 * type-checked, each as a module of its own, against the workspace sources (`nest-session-state` is libs/session-state/src/index.ts,
 * `nest-session-state/redis` libs/session-state/src/redis.ts), with the workspace's compiler options. A block
 * that cannot stand alone says so in its fence (```ts fragment) and is skipped; the skip is listed.
 * A failure names the block (README line and heading) and the compiler's messages at README line numbers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const README = join(ROOT, 'README.md');
const SRC = join(ROOT, 'libs/session-state/src');
// Blocks become virtual files here (never written), so Node's module rules of the workspace apply to them.
const VIRTUAL_DIR = join(ROOT, 'test/docs/.readme-blocks');

/** One fenced code block of a Markdown file. */
interface CodeBlock {
  /** The Markdown file, relative to the repository root (`README.md`, `docs/redis.md`). */
  file: string;
  /** The fence's language (`ts`, `bash`, ...), lower-cased; '' when none. */
  language: string;
  /** The words after the language (`fragment` in ```ts fragment). */
  flags: string[];
  /** The nearest heading above the block, with its hashes (`## Quick start`). */
  heading: string;
  /** The 1-based line of the opening fence. */
  line: number;
  /** The block's text, without the fences. */
  code: string;
}

/** The fenced code blocks of `markdown`, in order. */
function codeBlocks(markdown: string, file = 'README.md'): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  let heading = '(before the first heading)';
  for (let i = 0; i < lines.length; i++) {
    const title = /^(#{1,6})\s+(.+?)\s*$/.exec(lines[i]);
    if (title) {
      heading = `${title[1]} ${title[2]}`;
      continue;
    }
    const open = /^(`{3,})\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [language = '', ...flags] = open[2].trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^${open[1]}\\s*$`).test(lines[j])) body.push(lines[j++]);
    if (j === lines.length)
      throw new Error(`${file}:${i + 1}: code block under "${heading}" is never closed`);
    blocks.push({
      file,
      language: language.toLowerCase(),
      flags,
      heading,
      line: i + 1,
      code: body.join('\n'),
    });
    i = j;
  }
  return blocks;
}

const isTypeScript = (block: CodeBlock) => block.language === 'ts' || block.language === 'typescript';
const isFragment = (block: CodeBlock) => block.flags.includes('fragment');

/** The workspace's compiler options (tsconfig.base.json), with the package names mapped to the sources. */
function compilerOptions(): ts.CompilerOptions {
  const base = ts.readConfigFile(join(ROOT, 'tsconfig.base.json'), (file) => ts.sys.readFile(file));
  if (base.error) throw new Error(ts.flattenDiagnosticMessageText(base.error.messageText, '\n'));
  const { options, errors } = ts.parseJsonConfigFileContent(base.config, ts.sys, ROOT);
  if (errors.length > 0)
    throw new Error(errors.map((e) => ts.flattenDiagnosticMessageText(e.messageText, '\n')).join('\n'));
  const redisEntry = join(SRC, 'redis.ts');
  return {
    ...options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    paths: {
      'nest-session-state': [join(SRC, 'index.ts')],
      // The subpath's file arrives with the packaging change (issue 17); until it is in this tree the Redis
      // classes are still exported by the main entry, so a block importing the subpath compiles against that.
      'nest-session-state/redis': [redisEntry],
    },
  };
}

/** What went wrong in one block: where it is and the compiler's messages, at README line numbers. */
interface BlockFailure {
  file: string;
  where: string;
  messages: string[];
}

let previousProgram: ts.Program | undefined;

/** Type-checks `blocks` (each a module of its own) in one program; returns the blocks that fail. */
function typeCheck(blocks: CodeBlock[]): BlockFailure[] {
  if (blocks.length === 0) return [];
  const options = compilerOptions();
  const virtual = new Map<string, CodeBlock>();
  // `export {}` makes every block a module, so two blocks declaring the same name do not collide.
  blocks.forEach((block, i) => virtual.set(join(VIRTUAL_DIR, `block-${i + 1}.ts`), block));
  const textOf = (name: string) => {
    const block = virtual.get(resolve(name));
    return block && `${block.code}\nexport {};\n`;
  };

  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    const text = textOf(name);
    return text === undefined
      ? getSourceFile(name, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(name, text, languageVersion, true, ts.ScriptKind.TS);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => textOf(name) !== undefined || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => textOf(name) ?? readFile(name);

  const program = ts.createProgram([...virtual.keys()], options, host, previousProgram);
  previousProgram = program;

  const failures: BlockFailure[] = [];
  const general = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  if (general.length > 0)
    failures.push({ file: '', where: 'compiler options', messages: general.map(format) });
  for (const [name, block] of virtual) {
    const source = program.getSourceFile(name)!;
    const diagnostics = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ];
    if (diagnostics.length === 0) continue;
    failures.push({
      file: block.file,
      where: `${block.file}:${block.line} (the \`\`\`${block.language} block under "${block.heading}")`,
      messages: diagnostics.map((d) => {
        const at = d.start === undefined ? undefined : source.getLineAndCharacterOfPosition(d.start);
        // Line 1 of the block is the line after the opening fence.
        return `${at ? `${block.file}:${block.line + at.line + 1}:${at.character + 1}: ` : ''}${format(d)}`;
      }),
    });
  }
  return failures;
}

function format(diagnostic: ts.Diagnostic): string {
  return `TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
}

/** A failure list as one readable string, so a failed expectation shows it whole. */
const report = (failures: BlockFailure[]) =>
  failures.map((f) => `${f.where}\n${f.messages.map((m) => `  ${m}`).join('\n')}`).join('\n\n');

/** The body of the first method whose name and `(` start at `signature` in `code` (braces matched), or undefined. */
function methodBody(code: string, signature: string): string | undefined {
  const at = code.indexOf(signature);
  if (at === -1) return undefined;
  const open = code.indexOf('{', code.indexOf(')', at));
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === '{') depth++;
    else if (code[i] === '}' && --depth === 0) return code.slice(open + 1, i);
  }
  return undefined;
}

const readme = readFileSync(README, 'utf8');
const blocks = codeBlocks(readme);
const typescriptBlocks = blocks.filter(isTypeScript);

describe('README.md code blocks', () => {
  it('opens with the two commands for a fresh clone, as its first code block', () => {
    expect(blocks[0]?.language).toBe('bash');
    expect(blocks[0]?.code).toBe(
      [
        'npm ci && npm start     # the sample app on http://localhost:3000 (in-memory store, zero config)',
        'npm ci && npm test      # every test: unit, e2e, Redis (standalone, password, TLS, cluster), browser',
      ].join('\n'),
    );
  });

  it("the Quick start's first ts block is a whole main.ts: a controller, a module and a bootstrap", () => {
    const quickStart = typescriptBlocks.find((block) => block.heading === '## Quick start');
    expect(quickStart).toBeDefined();
    expect(isFragment(quickStart!)).toBe(false);
    expect(quickStart!.code).toContain("from 'nest-session-state'");
    expect(quickStart!.code).toContain('SessionModule.forRoot()');
    expect(quickStart!.code).toContain('await NestFactory.create(AppModule)');
    expect(quickStart!.code).toContain('app.listen(process.env.PORT ?? 3000)');
  });

  it('a block fenced as ```ts fragment really cannot compile alone (else it must drop the flag and be checked)', () => {
    const fragments = typescriptBlocks.filter(isFragment);
    expect(typescriptBlocks.length - fragments.length).toBeGreaterThanOrEqual(5);
    const compilable = fragments.filter((block) => typeCheck([block]).length === 0);
    expect(compilable.map((block) => `README.md:${block.line} (${block.heading})`)).toEqual([]);
  }, 120_000);

  it('every ```ts block type-checks against the workspace sources', () => {
    const failures = typeCheck(typescriptBlocks.filter((block) => !isFragment(block)));
    expect(report(failures)).toBe('');
  }, 120_000);
});

describe('docs/*.md code blocks', () => {
  const docs = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
  const docBlocks = docs.flatMap((name) =>
    codeBlocks(readFileSync(join(ROOT, 'docs', name), 'utf8'), `docs/${name}`).filter(isTypeScript),
  );
  let failures: BlockFailure[] = [];

  beforeAll(() => {
    failures = typeCheck(docBlocks.filter((block) => !isFragment(block)));
  }, 120_000);

  it('has ts blocks to check', () => {
    expect(docBlocks.length).toBeGreaterThanOrEqual(3);
  });

  it("every gateway's handleConnection that calls the store catches its rejection (Nest leaves it unhandled: the process exits)", () => {
    const all = [...typescriptBlocks, ...docBlocks];
    const bodies = all.flatMap((block) => {
      const body = methodBody(block.code, 'handleConnection(');
      return body === undefined ? [] : [{ block, body }];
    });
    expect(bodies.length).toBeGreaterThanOrEqual(2); // README's and docs/websocket.md's
    const uncaught = bodies.filter(({ body }) => {
      // Every call of the store (connect, reload, of) is awaited inside a try that has a catch, or has .catch().
      const calls = [...body.matchAll(/this\.sessions\.(connect|reload|of)\(/g)].map((m) => m.index);
      return calls.some((at) => {
        const before = body.slice(0, at);
        const tryOpen = before.lastIndexOf('try {');
        const caught = tryOpen !== -1 && /\}\s*catch\b/.test(body.slice(at));
        return !caught && !/^[^;]*\.catch\(/.test(body.slice(at));
      });
    });
    expect(uncaught.map(({ block }) => `${block.file}:${block.line} (${block.heading})`)).toEqual([]);
    // The check itself: the old README body, and an origin check before the call, are told apart.
    const check = (code: string) => methodBody(code, 'handleConnection(');
    expect(
      check('async handleConnection(c) { if (x) { c.close(); return; } await this.sessions.connect(c); }'),
    ).toContain('await this.sessions.connect(c);');
  });

  it.each(docs)('every ```ts block of docs/%s type-checks', (name) => {
    expect(report(failures.filter((f) => f.file === `docs/${name}` || f.file === ''))).toBe('');
  });
});

describe('the checks themselves (synthetic Markdown)', () => {
  const markdown = [
    '# Title',
    '',
    '```bash',
    'npm test',
    '```',
    '',
    '## Good',
    '',
    '```ts',
    "import { SessionModule } from 'nest-session-state';",
    'export const options = SessionModule.forRoot();',
    '```',
    '',
    '### Bad',
    '',
    '```ts',
    "import { SessionModule } from 'nest-session-state';",
    '',
    'const count: number = SessionModule;',
    '```',
    '',
    '```ts fragment',
    'secrets: [process.env.SECRET!],',
    '```',
  ].join('\n');

  it('reads every block with its language, flags, heading and line', () => {
    expect(
      codeBlocks(markdown).map(({ language, flags, heading, line }) => ({ language, flags, heading, line })),
    ).toEqual([
      { language: 'bash', flags: [], heading: '# Title', line: 3 },
      { language: 'ts', flags: [], heading: '## Good', line: 9 },
      { language: 'ts', flags: [], heading: '### Bad', line: 16 },
      { language: 'ts', flags: ['fragment'], heading: '### Bad', line: 22 },
    ]);
  });

  it('refuses a block that is never closed', () => {
    expect(() => codeBlocks('## Open\n```ts\nconst x = 1;\n')).toThrow(
      'README.md:2: code block under "## Open"',
    );
  });

  it('reports the failing block by line and heading, with the message at its README line; passes the good one', () => {
    const synthetic = codeBlocks(markdown, 'synthetic.md').filter((b) => isTypeScript(b) && !isFragment(b));
    const failures = typeCheck(synthetic);
    expect(failures.map((f) => f.where)).toEqual(['synthetic.md:16 (the ```ts block under "### Bad")']);
    expect(failures[0].messages).toEqual([
      expect.stringMatching(
        /^synthetic\.md:19:7: TS2322: Type 'typeof SessionModule' is not assignable to type 'number'/,
      ),
    ]);
  }, 120_000);

  it('a fragment would not compile as a module, which is why its fence must say so', () => {
    const fragment = codeBlocks(markdown, 'synthetic.md').find(isFragment)!;
    expect(typeCheck([fragment])).not.toEqual([]);
  }, 120_000);
});
