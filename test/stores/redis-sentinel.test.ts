import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApprovalRecord, PublishedEvent, RequestRecord } from '../../src/core/types.js';
import { isMailotpError } from '../../src/core/errors.js';
import { createStore } from '../../src/stores/create-store.js';
import { checkStore } from '../../src/doctor/service-checks.js';
import type { Store } from '../../src/core/ports/store.js';
import { startSentinelSet, type SentinelSetHandle } from '../helpers/redis-sentinel.js';
import { configWithStore } from '../helpers/store-config.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function approval(n: number, now: number): ApprovalRecord {
  return { user: 'alice', scope: `10.0.${n >> 8}.${n & 255}`, clientIp: `10.0.${n >> 8}.${n & 255}`, approvedAt: now, expiresAt: now + 3_600_000, requestId: `r${n}` };
}

function request(id: string, now: number): RequestRecord {
  return { id, type: 'connection', user: 'alice', deviceId: 'd1', protocol: 'imap', clientIp: '10.9.9.9', createdAt: now, expiresAt: now + 60_000, status: 'approved' };
}

describe('Redis store behind Sentinel (one master, two replicas, three sentinels)', () => {
  let set: SentinelSetHandle;
  const stores: Store[] = [];
  const errors: Error[] = [];
  const open = async (over: { waitReplicas?: number } = {}): Promise<Store> => {
    const s = await createStore(
      { driver: 'redis', sentinels: set.sentinels, sentinelName: set.name, keyPrefix: `sentinel-${process.pid}:`, ...over },
      { onError: (e) => errors.push(e) },
    );
    stores.push(s);
    return s;
  };

  before(async () => {
    set = await startSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await set?.stop();
  });

  it('refuses to acknowledge an approval that fewer replicas than asked for confirm (WAIT)', async () => {
    const store = await open({ waitReplicas: 3 });
    const now = Date.now();
    await assert.rejects(store.putApproval(approval(0, now), now), (err: unknown) => isMailotpError(err) && err.code === 'MAILOTP_ERR_STORE_UNAVAILABLE' && /1 of 3|2 of 3/.test(err.message));
  });

  it('with WAIT, an acknowledged approval is on a replica (cost printed)', async () => {
    const waiting = await open();
    const plain = await open({ waitReplicas: 0 });
    const time = async (store: Store, base: number): Promise<number> => {
      const started = process.hrtime.bigint();
      for (let i = 0; i < 200; i++) await store.putApproval(approval(base + i, Date.now()), Date.now());
      return Number(process.hrtime.bigint() - started) / 200 / 1e6;
    };
    const withWait = await time(waiting, 1000);
    const without = await time(plain, 2000);
    // Read straight from the replicas: WAIT 1 means at least one already has the last acknowledged approval.
    const last = approval(1199, 0);
    const held = await Promise.all((await set.replicaPorts()).map((port) => set.readFrom(port, (r) => r.hget(`sentinel-${process.pid}:approvals:alice`, last.scope))));
    assert.ok(held.some((raw) => raw !== null), 'no replica has the acknowledged approval');
    console.log(`# putApproval with WAIT 1: ${withWait.toFixed(2)} ms, without: ${without.toFixed(2)} ms (mean of 200, local replicas)`);
  });

  it('keeps every acknowledged approval, fails calls only temporarily, resubscribes and resumes on the new master', async () => {
    const writer = await open();
    const publisher = await open();
    const listener = await open();
    const seen: PublishedEvent[] = [];
    listener.subscribe((e) => seen.push(e));
    // The subscription is live before the failover: an event gets through.
    await publishUntil(publisher, seen, 'before');

    const acknowledged: ApprovalRecord[] = [];
    const refusals = new Set<string>();
    let n = 1;
    let stop = false;
    let killedAt = 0;
    let firstAfterKill = 0;
    // Taps keep arriving: one approval every 20 ms, each acknowledged only once a replica has it.
    const tapping = (async () => {
      while (!stop) {
        const a = approval(n++, Date.now());
        try {
          await writer.putApproval(a, a.approvedAt);
          acknowledged.push(a);
          if (killedAt > 0 && firstAfterKill === 0) firstAfterKill = Date.now();
        } catch (err) {
          // Fail closed and temporary: the one error a store gives while Redis is away.
          refusals.add(isMailotpError(err) ? err.code : String(err));
        }
        await sleep(20);
      }
    })();
    await sleep(300);
    const before = acknowledged.length;
    assert.ok(before > 0, 'approvals were acknowledged before the failover');
    const oldPort = await set.killMaster();
    killedAt = Date.now();
    const newPort = await set.waitForNewMaster(oldPort);
    const end = Date.now() + 20_000;
    while (firstAfterKill === 0 && Date.now() < end) await sleep(50);
    stop = true;
    await tapping;

    assert.notEqual(newPort, oldPort);
    assert.ok(firstAfterKill > 0, 'writes resumed on the new master without a restart');
    assert.deepEqual([...refusals], refusals.size ? ['MAILOTP_ERR_STORE_UNAVAILABLE'] : []);
    // Nothing acknowledged is lost, whether it was written just before the kill or after the failover.
    const now = Date.now();
    const kept = await writer.listApprovals('alice', now);
    const keptScopes = new Set(kept.map((a) => a.scope));
    const lost = acknowledged.filter((a) => !keptScopes.has(a.scope));
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged approvals lost`);
    // Pub/sub, which releases held logins, came back on the new master by itself.
    await publishUntil(publisher, seen, 'after');
    console.log(
      `# sentinel failover (down-after 1000 ms): writes refused for ${firstAfterKill - killedAt} ms after the master was killed; ` +
        `${acknowledged.length} approvals acknowledged (${before} before the kill), 0 lost`,
    );
  });

  /** Publishes until the listener sees the event: subscribing and reconnecting are asynchronous. */
  async function publishUntil(publisher: Store, seen: PublishedEvent[], id: string): Promise<void> {
    const end = Date.now() + 15_000;
    while (!seen.some((e) => 'request' in e && e.request.id === id)) {
      if (Date.now() > end) assert.fail(`the subscriber never got event ${id}`);
      await publisher.publish({ type: 'request.decided', request: request(id, Date.now()) }).catch(() => undefined);
      await sleep(100);
    }
  }
});

describe('Redis store behind Sentinel with passwords (servers and sentinels each ask for one)', () => {
  const SERVER_PASS = 'server-pass-7f3a';
  const SENTINEL_PASS = 'sentinel-pass-91c2';
  let set: SentinelSetHandle;
  const stores: Store[] = [];
  const config = (store: Record<string, unknown>) =>
    configWithStore({ driver: 'redis', sentinels: set.sentinels, sentinelName: set.name, keyPrefix: `sentinel-auth-${process.pid}:`, ...store });

  before(async () => {
    set = await startSentinelSet({ password: SERVER_PASS, sentinelPassword: SENTINEL_PASS });
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await set?.stop();
  });

  it('works with both passwords: an approval acknowledged by a replica (WAIT 1), and events on pub/sub', async () => {
    const store = await createStore(config({ password: SERVER_PASS, sentinelPassword: SENTINEL_PASS }).store);
    stores.push(store);
    const now = Date.now();
    await store.putApproval(approval(1, now), now);
    assert.deepEqual((await store.listApprovals('alice', now)).map((a) => a.scope), [approval(1, now).scope]);
    const seen: PublishedEvent[] = [];
    store.subscribe((e) => seen.push(e));
    const end = Date.now() + 15_000;
    while (!seen.some((e) => 'request' in e && e.request.id === 'auth-1')) {
      if (Date.now() > end) assert.fail('the subscriber never got the event');
      await store.publish({ type: 'request.decided', request: request('auth-1', Date.now()) });
      await sleep(100);
    }
  });

  it('mailotp doctor says which password is missing or wrong, and passes with both', async () => {
    const noSentinelPass = await checkStore(config({ password: SERVER_PASS }), Date.now());
    assert.equal(noSentinelPass.status, 'fail');
    assert.match(noSentinelPass.detail, /NOAUTH/);
    assert.match(noSentinelPass.hint ?? '', /store\.sentinelPassword/);
    const wrongServerPass = await checkStore(config({ password: 'not-the-password', sentinelPassword: SENTINEL_PASS }), Date.now());
    assert.equal(wrongServerPass.status, 'fail');
    assert.match(wrongServerPass.detail, /WRONGPASS/);
    const both = await checkStore(config({ password: SERVER_PASS, sentinelPassword: SENTINEL_PASS }), Date.now());
    assert.deepEqual([both.status, both.detail], ['ok', 'write, read and delete round trip']);
    // The label names the set, never a password.
    assert.doesNotMatch(`${both.name} ${wrongServerPass.name}`, /pass-/);
  });

  it('refuses a configuration with the passwords beside url rather than in it', () => {
    assert.throws(() => configWithStore({ driver: 'redis', url: 'redis://10.0.0.5:6379/0', password: 'x' }), /store\.password.*write it into the url/s);
    assert.throws(() => configWithStore({ driver: 'redis', url: 'redis://10.0.0.5:6379/0', sentinelPassword: 'x' }), /store\.sentinelPassword.*only with sentinels/s);
  });
});
