import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const src = fileURLToPath(new URL('../../src/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'mailotp-create-store-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Which of the heavy optional libraries a fresh process holds after loading the server's code and
 * opening a SQLite store (require.cache: these packages are CommonJS, loaded through it).
 */
const script = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const loaded = () => {
  const files = Object.keys(require.cache);
  return Object.fromEntries(['ioredis', 'better-sqlite3', 'firebase-admin', 'prom-client', 'pino-pretty'].map((p) => [p, files.some((f) => f.includes('/node_modules/' + p + '/'))]));
};
await import(${JSON.stringify(join(src, 'main.js'))});
const { createStore } = await import(${JSON.stringify(join(src, 'stores/create-store.js'))});
const before = loaded();
const store = await createStore({ driver: 'sqlite', path: ${JSON.stringify(join(tmp, 'm.db'))} });
await store.ping();
await store.close();
console.log(JSON.stringify({ before, after: loaded() }));
`;

/** What the CLI holds once its commands are defined, before any of them runs (`--help`, `--version`). */
const cliScript = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
await import(${JSON.stringify(join(src, 'cli/index.js'))});
const files = Object.keys(require.cache);
console.log(JSON.stringify(['ioredis', 'better-sqlite3', 'firebase-admin', 'prom-client', 'fastify'].filter((p) => files.some((f) => f.includes('/node_modules/' + p + '/')))));
`;

describe('mailotp loads only what the configuration and the command use', () => {
  it('a SQLite instance without FCM, metrics or a terminal never loads ioredis, firebase-admin, prom-client or pino-pretty', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: tmp });
    const { before, after } = JSON.parse(stdout) as Record<'before' | 'after', Record<string, boolean>>;
    // Loading main.js opens no store: neither backend yet.
    assert.deepEqual(before, { ioredis: false, 'better-sqlite3': false, 'firebase-admin': false, 'prom-client': false, 'pino-pretty': false });
    assert.deepEqual(after, { ioredis: false, 'better-sqlite3': true, 'firebase-admin': false, 'prom-client': false, 'pino-pretty': false });
  });

  it('the CLI loads no store, push, metrics or web library until a command needs it', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', cliScript], { cwd: tmp });
    assert.deepEqual(JSON.parse(stdout), []);
  });
});
