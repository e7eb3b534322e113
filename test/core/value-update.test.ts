import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMailotpError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/ports/store.js';
import { updateRecord, updateValue } from '../../src/core/value-update.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';

const MINUTE = 60_000;

describe('updateValue: read, change, compare-and-set', () => {
  it('creates, changes, writes nothing when told so, and reads again after a concurrent change', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const now = () => 1_000;
    try {
      assert.equal(await updateValue(store, 'k', MINUTE, now, (cur) => (cur === null ? 'a' : undefined)), 'a');
      assert.equal(await updateValue(store, 'k', MINUTE, now, (cur) => (cur === null ? 'x' : undefined)), undefined);
      assert.equal(await store.getValue('k', now()), 'a');
      let rounds = 0;
      const got = await updateValue(store, 'k', MINUTE, now, (cur) => {
        rounds++;
        // Another writer lands between this read and its write, once.
        if (rounds === 1) void store.setValue('k', 'b', MINUTE, now());
        return `${cur}+`;
      });
      assert.equal(got, 'b+');
      assert.equal(rounds, 2);
      assert.deepEqual(await updateRecord<{ n: number }>(store, 'r', MINUTE, now, (cur) => ({ n: (cur?.n ?? 0) + 1 })), { n: 1 });
      assert.deepEqual(await updateRecord<{ n: number }>(store, 'r', MINUTE, now, (cur) => ({ n: (cur?.n ?? 0) + 1 })), { n: 2 });
    } finally {
      await store.close();
    }
  });

  it('gives up with a temporary error when every write loses, and writes nothing', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const now = () => 1_000;
    try {
      await store.setValue('k', 'a', MINUTE, now());
      const losing = new Proxy(store, {
        get: (t, p, r) => (p === 'replaceValue' ? async () => false : (Reflect.get(t, p, r) as (...a: unknown[]) => unknown).bind(t)),
      }) as Store;
      await assert.rejects(updateValue(losing, 'k', MINUTE, now, () => 'b'), (err) => isMailotpError(err, 'MAILOTP_ERR_STORE_UNAVAILABLE'));
      assert.equal(await store.getValue('k', now()), 'a');
    } finally {
      await store.close();
    }
  });
});
