import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AUDIT_EVENTS, createLogger } from '../../src/log/logger.js';

function capture(): { stream: Writable; lines: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, lines: () => out };
}

describe('logger', () => {
  it('redacts passwords, tokens and secrets wherever they sit, at every level', () => {
    const c = capture();
    const log = createLogger({ level: 'trace', destination: c.stream });
    const child = log.child({ cid: 'abc', user: 'alice' });
    child.trace({ password: 'hunter2-pw', token: 'tok-123456', nested: { secret: 's3cr3t-x', pushToken: 'fcm-xyz' } }, 'one');
    child.info({ req: { headers: { authorization: 'Bearer abc.def-ghi' } } }, 'two');
    child.warn({ device: { tokenHash: 'deadbeefcafe' } }, 'three');
    const text = c.lines();
    for (const secret of ['hunter2-pw', 'tok-123456', 's3cr3t-x', 'fcm-xyz', 'abc.def-ghi', 'deadbeefcafe']) {
      assert.ok(!text.includes(secret), `leaks ${secret}`);
    }
    assert.equal(text.split('\n').filter(Boolean).length, 3);
    assert.match(text, /\[redacted\]/);
    assert.match(text, /"cid":"abc"/);
  });

  it('src uses only the fixed audit event names', () => {
    const root = fileURLToPath(new URL('../../../src/', import.meta.url));
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (n.endsWith('.ts')) files.push(p);
      }
    };
    walk(root);
    const used = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\bevent: '([a-z-]+\.[a-z-]+)'/g)) used.add(m[1]!);
    }
    assert.ok(used.size >= 10, 'found the audit calls');
    const known = new Set<string>(AUDIT_EVENTS);
    assert.deepEqual([...used].filter((e) => !known.has(e)), []);
  });
});
