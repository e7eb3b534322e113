import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The core owns its ports (Store, Notifier, the request view): the adapters depend on it, never the
// other way round. Each rule: files under `from` may not import anything under one of `banned`.
const RULES: { from: string; banned: string[] }[] = [
  { from: 'core', banned: ['stores', 'push', 'portal', 'protocols'] },
  { from: 'config', banned: ['push'] },
  { from: 'push', banned: ['portal'] },
];

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

  for (const { from, banned } of RULES) {
    it(`nothing under src/${from} imports from ${banned.join(', ')}`, () => {
      assert.ok(tsFiles(join(SRC, from)).length > 0, `src/${from} has no files`);
      assert.deepEqual(violations(from, banned), []);
    });
  }
});
