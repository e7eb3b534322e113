import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkStore, reachableHost, redactUrl, storeLabel } from '../../src/doctor/service-checks.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { configWithStore } from '../helpers/store-config.js';

describe('doctor checks', () => {
  it('never shows the password of a Redis or webhook URL', () => {
    assert.equal(redactUrl('redis://:s3cret@10.0.0.5:6379/0'), 'redis://:***@10.0.0.5:6379/0');
    assert.equal(redactUrl('rediss://mailotp:s3cret@redis.internal:6380/1'), 'rediss://mailotp:***@redis.internal:6380/1');
    assert.equal(redactUrl('https://hooks.example.com/x?a=b'), 'https://hooks.example.com/x?a=b');
  });

  it('names the store it checks: the file, the Redis URL without its password, or the Sentinel set', () => {
    const dir = '/var/lib/mailotp';
    assert.equal(storeLabel(configWithStore({ driver: 'sqlite', path: 'mailotp.db' }, dir).store), 'sqlite /var/lib/mailotp/mailotp.db');
    assert.equal(storeLabel(configWithStore({ driver: 'redis', url: 'redis://:s3cret@10.0.0.5:6379/0' }, dir).store), 'redis redis://:***@10.0.0.5:6379/0');
    assert.equal(
      storeLabel(configWithStore({ driver: 'redis', sentinels: ['10.0.0.1:26379', '[fd00::2]:26379'], sentinelName: 'mail' }, dir).store),
      'redis sentinel mail via 10.0.0.1:26379, [fd00::2]:26379',
    );
  });

  it('reaches wildcard listeners on loopback unless told another address', () => {
    assert.equal(reachableHost('0.0.0.0', undefined), '127.0.0.1');
    assert.equal(reachableHost('::', undefined), '::1');
    assert.equal(reachableHost('10.0.0.11', undefined), '10.0.0.11');
    assert.equal(reachableHost('0.0.0.0', 'mail.example.com'), 'mail.example.com');
  });

  it('SQLite: FAIL when the file the service would use is not there; a round trip on the real file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-doctor-'));
    try {
      const c = configWithStore({ driver: 'sqlite', path: 'state/mailotp.db' }, dir);
      const missing = await checkStore(c, Date.now());
      assert.equal(missing.status, 'fail');
      assert.match(missing.detail, /does not exist/);
      // The service creates the file on start; the doctor opens the same file beside it.
      const service = new SqliteStore({ path: join(dir, 'state', 'mailotp.db') });
      const ok = await checkStore(c, Date.now());
      assert.deepEqual([ok.status, ok.detail], ['ok', 'write, read and delete round trip']);
      await service.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
