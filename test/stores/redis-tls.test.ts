import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { checkStore } from '../../src/doctor/service-checks.js';
import { createStore } from '../../src/stores/create-store.js';
import type { Store } from '../../src/core/ports/store.js';
import { testCerts } from '../helpers/certs.js';
import { freePorts } from '../helpers/free-port.js';
import { redisTlsArgs, spawnRedisProcess, stopRedisProcess } from '../helpers/redis-server.js';
import { startSentinelSet, type SentinelSetHandle } from '../helpers/redis-sentinel.js';
import { configWithStore } from '../helpers/store-config.js';

const config = (store: Record<string, unknown>) => configWithStore({ driver: 'redis', keyPrefix: `tls-${process.pid}:`, ...store });

describe('Redis over TLS with a private CA (store.ca)', () => {
  const certs = testCerts();
  let child: ChildProcess;
  let tlsPort: number;

  before(async () => {
    const [plain, tls] = (await freePorts(2)) as [number, number];
    tlsPort = tls;
    child = await spawnRedisProcess(plain, ['--save', '', '--appendonly', 'no', ...redisTlsArgs(tls, certs)]);
  });
  after(async () => {
    if (child) await stopRedisProcess(child);
  });

  it('a rediss:// url: the doctor fails on an unknown CA, and passes with store.ca', async () => {
    const url = `rediss://127.0.0.1:${tlsPort}/0`;
    const unknownCa = await checkStore(config({ url }), Date.now());
    assert.equal(unknownCa.status, 'fail');
    assert.match(unknownCa.detail, /certificate/i);
    const withCa = await checkStore(config({ url, ca: certs.caFile }), Date.now());
    assert.deepEqual([withCa.status, withCa.detail], ['ok', 'write, read and delete round trip']);
  });

  it('refuses store.ca without TLS, tls: true with url, and a CA file it cannot read', async () => {
    assert.throws(() => config({ url: `redis://127.0.0.1:${tlsPort}/0`, ca: certs.caFile }), /store\.ca.*only with TLS/s);
    assert.throws(() => config({ url: `rediss://127.0.0.1:${tlsPort}/0`, tls: true }), /store\.tls.*rediss:\/\//s);
    await assert.rejects(createStore(config({ url: `rediss://127.0.0.1:${tlsPort}/0`, ca: '/nonexistent/ca.pem' }).store), /store\.ca: cannot read \/nonexistent\/ca\.pem/);
  });
});

describe('Redis Sentinel over TLS (store.tls with sentinels; servers, replication and sentinels on TLS)', () => {
  const certs = testCerts();
  let set: SentinelSetHandle;
  const stores: Store[] = [];

  before(async () => {
    set = await startSentinelSet({ tls: certs });
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await set?.stop();
  });

  it('works with tls and the CA: an approval acknowledged by a replica (WAIT 1) on the TLS ports', async () => {
    const cfg = config({ sentinels: set.sentinels, sentinelName: set.name, tls: true, ca: certs.caFile });
    const store = await createStore(cfg.store);
    stores.push(store);
    const now = Date.now();
    await store.putApproval({ user: 'alice', scope: '10.0.0.1', clientIp: '10.0.0.1', approvedAt: now, expiresAt: now + 60_000, requestId: 'r1' }, now);
    assert.deepEqual((await store.listApprovals('alice', now)).map((a) => a.scope), ['10.0.0.1']);
    assert.deepEqual((await checkStore(cfg, Date.now())).status, 'ok');
  });

  it('fails, with a hint at store.tls and store.ca, without tls (the sentinels only answer TLS there) or without the CA', async () => {
    // ioredis reports a sentinel's failed TLS handshake only as a closed connection: the hint names the keys.
    for (const over of [{}, { tls: true }]) {
      const check = await checkStore(config({ sentinels: set.sentinels, sentinelName: set.name, ...over }), Date.now());
      assert.equal(check.status, 'fail');
      assert.match(check.detail, /sentinels are unreachable/);
      assert.match(check.hint ?? '', /store\.tls.*store\.ca/);
    }
  });
});
