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

  it('redacts one level down under any key, in child bindings too, without changing the logged objects', () => {
    const c = capture();
    const log = createLogger({ level: 'debug', destination: c.stream });
    const device = { user: 'alice', pushToken: 'fcm-in-binding', tokenHash: 'hash-in-binding' };
    const child = log.child({ cid: 'abc', device });
    const err = Object.assign(new Error('refused by the push service'), { token: 'tok-on-error' });
    const payload = { id: 'r1', webPush: { endpoint: 'https://push.example/secret-endpoint' } };
    child.debug({ err, payload, headers: { cookie: 'sid=cookie-value' } }, 'four');
    child.info({ upstream: { host: 'imap.example', pass: 'pass-nested' } }, 'five');
    const text = c.lines();
    for (const secret of ['fcm-in-binding', 'hash-in-binding', 'tok-on-error', 'secret-endpoint', 'cookie-value', 'pass-nested']) {
      assert.ok(!text.includes(secret), `leaks ${secret}`);
    }
    const [four, five] = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
    // What is not secret stays, and an Error is still serialised as one.
    assert.equal(four!.device!.user, 'alice');
    assert.equal(four!.err!.message, 'refused by the push service');
    assert.match(String(four!.err!.stack), /refused by the push service/);
    assert.equal(four!.payload!.id, 'r1');
    assert.equal(five!.upstream!.host, 'imap.example');
    assert.equal(five!.upstream!.pass, '[redacted]');
    // The caller's objects are untouched.
    assert.equal(device.pushToken, 'fcm-in-binding');
    assert.equal(err.token, 'tok-on-error');
    assert.equal(payload.webPush.endpoint, 'https://push.example/secret-endpoint');
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
