import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load-config.js';
import { Lifecycle } from '../../src/core/lifecycle.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { startMailotp } from '../../src/main.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';

/** A logger whose lines are kept, parsed. */
function keptLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

/** A start-up in the shape of main.ts: each part opened registers its closer; the part named `fails` throws. */
async function start(life: Lifecycle, parts: string[], fails: string, closed: string[]): Promise<void> {
  for (const part of parts) {
    if (part === fails) throw new Error(`${part} did not open`);
    await Promise.resolve();
    life.add(part, async () => {
      closed.push(part);
    });
  }
}

describe('Lifecycle (the closer stack)', () => {
  it('closes what a failed start-up opened, in reverse order, and nothing it did not open', async () => {
    const life = new Lifecycle(silentLogger());
    const closed: string[] = [];
    await assert.rejects(start(life, ['store', 'notifiers', 'upstreams', 'listeners', 'portal'], 'listeners', closed), /listeners did not open/);
    await life.close();
    assert.deepEqual(closed, ['upstreams', 'notifiers', 'store']);
  });

  it('runs every closer once even when some fail, logging each failure', async () => {
    const { logger, lines } = keptLogger();
    const life = new Lifecycle(logger);
    const closed: string[] = [];
    life.add('store', () => closed.push('store'));
    life.add('notifiers', () => Promise.reject(new Error('flush refused')));
    life.add('sweep', () => closed.push('sweep'));
    life.add('portal', () => {
      throw new Error('portal stuck');
    });
    await Promise.all([life.close(), life.close()]);
    await life.close();
    assert.deepEqual(closed, ['sweep', 'store']);
    const failures = lines.filter((l) => l.level === 50).map((l) => [l.part, l.err]);
    assert.deepEqual(failures, [
      ['portal', 'portal stuck'],
      ['notifiers', 'flush refused'],
    ]);
  });

  it('startMailotp: a portal port already in use fails the start and closes the store it was given', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    const store = new SqliteStore({ path: ':memory:' });
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-lifecycle-'));
    try {
      const config = parseConfig(
        {
          listeners: [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowInsecure: true }],
          upstream: { imap: { host: '127.0.0.1', port: 9, tls: 'none' } },
          portal: { enabled: true, host: '127.0.0.1', port, tls: false },
        },
        dir,
      );
      await assert.rejects(startMailotp(config, { logger: silentLogger(), store }), /EADDRINUSE/);
      // A closed SQLite store refuses every call.
      await assert.rejects(store.ping());
    } finally {
      await store.close();
      await new Promise((r) => taken.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
