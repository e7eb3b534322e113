import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isMailotpError } from '../../src/core/errors.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { createStore } from '../../src/stores/create-store.js';
import { SQLITE_SCHEMA_VERSION } from '../../src/stores/keys.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { auditLogContract } from './audit-log-contract.js';
import { eventLogContract } from './event-log-contract.js';
import { storeContract } from './store-contract.js';

const tmp = mkdtempSync(join(tmpdir(), 'mailotp-sqlite-'));
let n = 0;
after(() => rmSync(tmp, { recursive: true, force: true }));

storeContract('sqlite :memory:', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
});

auditLogContract('sqlite :memory:', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
});

eventLogContract('sqlite :memory:', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
});

storeContract('sqlite file', async () => {
  n += 1;
  const store = new SqliteStore({ path: join(tmp, `contract-${n}`, 'store.db') });
  return { store, cleanup: () => store.close() };
});

describe('SqliteStore on disk', () => {
  const T = Date.UTC(2026, 0, 1);

  it('creates the folder and the file on first open, and keeps data across reopen', async () => {
    const dir = join(tmp, 'nested', 'deeper');
    const path = join(dir, 'mailotp.db');
    assert.equal(existsSync(dir), false);

    const first = await createStore({ driver: 'sqlite', path });
    assert.ok(existsSync(path));
    const dev: DeviceRecord = { deviceId: 'd1', user: 'alice', name: 'phone', tokenHash: 'ff', createdAt: T };
    const req: RequestRecord = {
      id: 'r1',
      type: 'connection',
      user: 'alice',
      deviceId: 'd1',
      protocol: 'pop3',
      clientIp: '10.0.0.1',
      createdAt: T,
      expiresAt: T + 60_000,
      status: 'pending',
    };
    await first.setDaemonOtp('alice', true, T);
    await first.putDevice(dev, false);
    await first.createRequest(req, T);
    await first.putApproval({ user: 'alice', scope: '*', clientIp: '10.0.0.1', approvedAt: T, expiresAt: T + 1 }, T);
    assert.equal(await first.hit('k', 1_000, T), 1);
    await first.close();

    const second = await createStore({ driver: 'sqlite', path });
    try {
      assert.deepEqual(await second.getUser('alice'), { user: 'alice', daemonOtp: true, updatedAt: T });
      assert.deepEqual(await second.getDeviceByUser('alice'), dev);
      assert.deepEqual(await second.listPendingRequests('d1', T), [req]);
      assert.equal((await second.listApprovals('alice', T)).length, 1);
      assert.equal(await second.hit('k', 1_000, T), 2);
    } finally {
      await second.close();
    }

    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  it('writes asked for together share a commit, and one that fails rolls back alone', async () => {
    const path = join(tmp, 'batch.db');
    const store = new SqliteStore({ path });
    const req: RequestRecord = {
      id: 'dup',
      type: 'connection',
      user: 'alice',
      deviceId: 'd1',
      protocol: 'imap',
      clientIp: '10.0.0.1',
      createdAt: T,
      expiresAt: T + 60_000,
      status: 'pending',
    };
    try {
      await store.createRequest(req, T);
      // One callback: three writes, the middle one refused (the request id is taken).
      const [a, dup, b] = await Promise.allSettled([
        store.hit('a', 60_000, T),
        store.createRequest({ ...req, user: 'bob' }, T),
        store.hit('b', 60_000, T),
      ]);
      assert.deepEqual(a, { status: 'fulfilled', value: 1 });
      assert.equal(dup.status, 'rejected');
      assert.ok(isMailotpError((dup as PromiseRejectedResult).reason, 'MAILOTP_ERR_BAD_INPUT'));
      assert.deepEqual(b, { status: 'fulfilled', value: 1 });
      // All together again, all succeeding: each caller gets its own count.
      const counts = await Promise.all([store.hit('a', 60_000, T), store.hit('a', 60_000, T), store.hit('b', 60_000, T)]);
      assert.deepEqual(counts, [2, 3, 2]);
    } finally {
      await store.close();
    }
    // What the file holds: both counters, and the first request untouched by the refused one.
    const raw = new Database(path, { readonly: true });
    try {
      const rows = raw.prepare('SELECT key, count FROM counters ORDER BY key').all();
      assert.deepEqual(rows, [{ key: 'a', count: 3 }, { key: 'b', count: 2 }]);
      const data = raw.prepare('SELECT user FROM requests').all();
      assert.deepEqual(data, [{ user: 'alice' }]);
    } finally {
      raw.close();
    }
  });

  it('refuses a database written by a newer schema', () => {
    const path = join(tmp, 'newer.db');
    const raw = new Database(path);
    raw.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(
      () => new SqliteStore({ path }),
      (err: unknown) => isMailotpError(err, 'MAILOTP_ERR_CONFIG'),
    );
  });

  it('fails closed when the path cannot be opened', () => {
    // A regular file where the folder should be (ENOTDIR).
    const file = join(tmp, 'not-a-folder');
    writeFileSync(file, '');
    assert.throws(
      () => new SqliteStore({ path: join(file, 'store.db') }),
      (err: unknown) => isMailotpError(err, 'MAILOTP_ERR_STORE_UNAVAILABLE'),
    );
  });

  it('purges long-expired rows on writes', async () => {
    const path = join(tmp, 'purge.db');
    const store = new SqliteStore({ path });
    try {
      await store.putApproval({ user: 'u', scope: '*', clientIp: 'ip', approvedAt: T, expiresAt: T + 1 }, T);
      // A day later the expired row is gone from the table, not only filtered.
      await store.hit('k', 1_000, T + 86_400_000);
    } finally {
      await store.close();
    }
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM approvals').get() as { n: number }).n, 0);
    } finally {
      raw.close();
    }
  });
});
