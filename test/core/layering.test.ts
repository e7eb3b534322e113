import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The core owns its ports (Store, Notifier, the request view): the adapters depend on it, never the
// other way round. Each rule: files under `from` may not import anything under one of `banned`.
const RULES: { from: string; banned: string[] }[] = [
  { from: 'core', banned: ['stores', 'push', 'portal', 'protocols'] },
  { from: 'config', banned: ['push'] },
  { from: 'push', banned: ['portal'] },
  // The portal and the CLI go through the core's services; the wiring (main.ts, admin-core.ts) opens the store.
  { from: 'portal', banned: ['stores'] },
  { from: 'cli', banned: ['stores'] },
];

/** The folders whose code reaches state only through the core's services, never the Store. */
const THROUGH_THE_CORE = ['portal', 'cli'];

// The compiled test runs from dist/test/core; the sources are read, not the compiled output.
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every module a source text names: static and type imports (also over several lines), re-exports,
 * side-effect imports and dynamic import(). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  return found;
}

/** The top folder under src/ that a relative import of `file` lands in, or null for packages. */
function targetFolder(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const rel = relative(SRC, resolve(dirname(file), spec));
  return rel.startsWith('..') ? null : rel.split(/[\\/]/)[0]!;
}

function violations(from: string, banned: string[]): string[] {
  const out: string[] = [];
  for (const file of tsFiles(join(SRC, from))) {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      const folder = targetFolder(file, spec);
      if (folder !== null && banned.includes(folder)) out.push(`${relative(SRC, file)} imports ${spec}`);
    }
  }
  return out;
}

/**
 * Every place a source text reaches for the store, read from its syntax tree (so comments, strings
 * such as 'no-store' and line breaks neither hide nor fake one): a `.store` or `['store']` member,
 * a `store` taken out by destructuring, a `'store'` key in a type (`Pick<CoreServices, 'store'>`,
 * `CoreServices['store']`), and the `Store` port imported under any name.
 */
function storeUses(fileName: string, text: string): string[] {
  const found: string[] = [];
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const at = (node: ts.Node, what: string) => found.push(`${what} (line ${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1})`);
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'store') at(node, `.store`);
    else if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression) && node.argumentExpression.text === 'store') at(node, `['store']`);
    else if (ts.isBindingElement(node) && (node.propertyName ?? node.name).getText(sf) === 'store') at(node, 'destructured store');
    else if (ts.isLiteralTypeNode(node) && ts.isStringLiteral(node.literal) && node.literal.text === 'store') at(node, `'store' in a type`);
    else if (ts.isImportSpecifier(node) && (node.propertyName ?? node.name).text === 'Store') at(node, 'imports Store');
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('layering', () => {
  it('reads every kind of import, so that a backward one cannot hide', () => {
    const text = [
      "import type { Store } from '../stores/store.js';",
      'import {\n  a,\n  b,\n} from "../push/x.js";',
      "export { c } from '../portal/y.js';",
      "const m = await import('../protocols/z.js');",
    ].join('\n');
    assert.deepEqual(specifiers(text), ['../stores/store.js', '../push/x.js', '../portal/y.js', '../protocols/z.js']);
    const inCore = join(SRC, 'core', 'x.ts');
    assert.equal(targetFolder(inCore, '../stores/store.js'), 'stores');
    assert.equal(targetFolder(inCore, './ports/store.js'), 'core');
    assert.equal(targetFolder(inCore, 'node:fs'), null);
  });

  it('the core holds its ports: Store, Notifier and the request view', () => {
    for (const port of ['ports/store.ts', 'ports/notifier.ts', 'request-view.ts']) {
      assert.ok(statSync(join(SRC, 'core', port)).isFile(), port);
    }
  });

  it('finds every way of reaching the store, and nothing in comments or strings', () => {
    const text = [
      "import type { Store as S, LoggedEvent } from '../core/ports/store.js';",
      'const a = core.store.getUser(user);',
      'const b = deps?.store;',
      "const c = core['store'];",
      'const { store, clock } = core;',
      'function f({ store: s }: X) {}',
      "type P = Pick<CoreServices, 'clock' | 'store'>;",
      "type Q = CoreServices['store'];",
      "// core.store.getUser(user) in a comment, and 'Cache-Control: no-store' in a string",
      "const d = { store: 'no-store' }.toString();",
    ].join('\n');
    assert.deepEqual(storeUses('x.ts', text), [
      'imports Store (line 1)',
      '.store (line 2)',
      '.store (line 3)',
      "['store'] (line 4)",
      'destructured store (line 5)',
      'destructured store (line 6)',
      "'store' in a type (line 7)",
      "'store' in a type (line 8)",
    ]);
  });

  for (const folder of THROUGH_THE_CORE) {
    it(`src/${folder} reaches the state only through the core's services, never the store`, () => {
      const files = tsFiles(join(SRC, folder));
      assert.ok(files.length > 0, `src/${folder} has no files`);
      const uses = files.flatMap((file) => storeUses(file, readFileSync(file, 'utf8')).map((u) => `${relative(SRC, file)}: ${u}`));
      assert.deepEqual(uses, []);
    });
  }

  for (const { from, banned } of RULES) {
    it(`nothing under src/${from} imports from ${banned.join(', ')}`, () => {
      assert.ok(tsFiles(join(SRC, from)).length > 0, `src/${from} has no files`);
      assert.deepEqual(violations(from, banned), []);
    });
  }
});
