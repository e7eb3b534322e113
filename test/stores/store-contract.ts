import assert from 'node:assert/strict';
import { mergeSpellings } from '../../src/core/user-merge.js';
import { UserNames } from '../../src/core/user-names.js';
import { silentLogger } from '../../src/log/logger.js';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { isMailotpError } from '../../src/core/errors.js';
import type { ApprovalRecord, DeviceRecord, PublishedEvent, RequestRecord, StoreEvent } from '../../src/core/types.js';
import type { Store } from '../../src/core/ports/store.js';

export type MakeStore = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

const MINUTE = 60_000;

let seq = 0;
function uid(prefix: string): string {
  seq += 1;
  return `${prefix}-${seq}`;
}

function device(user: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return { deviceId: uid('dev'), user, name: `${user}'s phone`, tokenHash: 'ab'.repeat(32), createdAt: 1, ...over };
}

function request(clock: FakeClock, dev: DeviceRecord, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id: uid('req'),
    type: 'login',
    user: dev.user,
    deviceId: dev.deviceId,
    protocol: 'imap',
    clientIp: '203.0.113.7',
    createdAt: clock.now(),
    expiresAt: clock.now() + MINUTE,
    status: 'pending',
    ...over,
  };
}

function approval(clock: FakeClock, user: string, over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    user,
    scope: '203.0.113.7',
    clientIp: '203.0.113.7',
    approvedAt: clock.now(),
    expiresAt: clock.now() + 10 * MINUTE,
    ...over,
  };
}

function opened(req: RequestRecord): StoreEvent {
  return { type: 'request.opened', request: req };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Publishes until `received` holds. A subscription on a networked backend becomes active some time
 * after subscribe() returns and the contract has no "subscribed" signal, so one publish could be lost.
 */
export async function publishUntil(
  publisher: Store,
  event: () => StoreEvent,
  received: () => boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!received()) {
    if (Date.now() > deadline) assert.fail('published events never arrived');
    await publisher.publish(event());
    for (let i = 0; i < 10 && !received(); i++) await sleep(5);
  }
}

export async function assertUnavailable(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isMailotpError(err, 'MAILOTP_ERR_STORE_UNAVAILABLE'), `unexpected error: ${String(err)}`);
    return true;
  });
}

/** The behaviour every Store backend must show; run once per backend. */
async function spellings(store: Store, now: number): Promise<void> {
  await store.setDaemonOtp('Alice', true, now);
  await store.setDaemonOtp('alice', false, now);
  await store.putDevice({ deviceId: 'dev-B', user: 'BOB', name: 'Phone', tokenHash: 'x'.repeat(64), createdAt: now }, false);
  await store.putDevice({ deviceId: 'dev-c1', user: 'Carol', name: 'Old', tokenHash: 'y'.repeat(64), createdAt: now }, false);
  await store.putDevice({ deviceId: 'dev-c2', user: 'carol', name: 'New', tokenHash: 'z'.repeat(64), createdAt: now }, false);
  await store.putApproval({ user: 'DAVE', scope: '10.0.0.1', clientIp: '10.0.0.1', approvedAt: now, expiresAt: now + 60_000 }, now);
  await store.putApproval({ user: 'dave', scope: '10.0.0.1', clientIp: '10.0.0.1', approvedAt: now, expiresAt: now + 30_000 }, now);
  await store.setDaemonOtp('ev\u0000il', true, now);
}

/** Runs the start-up merge on a store written under other spellings; shared with the Redis test. */
async function checkMerge(store: Store, now: number): Promise<void> {
  await spellings(store, now);
  const names = new UserNames({ caseSensitive: false, stripDomain: false });
  const report = await mergeSpellings(store, names, new FakeClock(now), silentLogger());
  assert.deepEqual(report.merged.map((m) => m.from).sort(), ['Alice', 'BOB', 'Carol', 'DAVE']);
  assert.deepEqual(report.unusable, ['ev\u0000il']);
  // The switch that was on under any spelling is on.
  assert.equal((await store.getUser('alice'))?.daemonOtp, true);
  assert.equal(await store.getUser('Alice'), null);
  // A device under another spelling answers for the canonical name, with the same id (its token works).
  assert.equal((await store.getDeviceByUser('bob'))?.deviceId, 'dev-B');
  assert.equal((await store.getDevice('dev-B'))?.user, 'bob');
  assert.equal(await store.getDeviceByUser('BOB'), null);
  // Two devices: the canonical name's stays, the other is removed (and reported).
  assert.equal((await store.getDeviceByUser('carol'))?.deviceId, 'dev-c2');
  assert.equal(await store.getDevice('dev-c1'), null);
  assert.equal(report.merged.find((m) => m.from === 'Carol')?.droppedDeviceId, 'dev-c1');
  // Approvals keep the later expiry.
  const daves = await store.listApprovals('dave', now);
  assert.equal(daves.length, 1);
  assert.equal(daves[0]?.expiresAt, now + 60_000);
  assert.deepEqual(await store.listApprovals('DAVE', now), []);
  // Nothing left to merge: running it again changes nothing.
  const again = await mergeSpellings(store, names, new FakeClock(now), silentLogger());
  assert.deepEqual(again.merged, []);
}


export function storeContract(name: string, make: MakeStore): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let clock: FakeClock;

    beforeEach(async () => {
      ({ store, cleanup } = await make());
      clock = new FakeClock();
    });
    afterEach(async () => {
      await cleanup();
    });

    describe('users', () => {
      it('returns null for an unknown user and the switch once set', async () => {
        assert.equal(await store.getUser('alice'), null);
        await store.setDaemonOtp('alice', true, clock.now());
        assert.deepEqual(await store.getUser('alice'), { user: 'alice', daemonOtp: true, updatedAt: clock.now() });
        clock.advance(5);
        await store.setDaemonOtp('alice', false, clock.now());
        assert.deepEqual(await store.getUser('alice'), { user: 'alice', daemonOtp: false, updatedAt: clock.now() });
        assert.equal(await store.getUser('bob'), null);
      });
    });

    describe('user names', () => {
      it('lists every name with a switch, a device or an approval once, awkward ones too', async () => {
        await store.setDaemonOtp('a:b%3A*', true, clock.now());
        await store.putDevice(device('a:b%3A*'), false);
        await store.putDevice(device('[x]'), false);
        await store.putApproval(approval(clock, 'Carol'), clock.now());
        assert.deepEqual((await store.listUserNames()).sort(), ['Carol', '[x]', 'a:b%3A*']);
        await store.deleteUser('a:b%3A*');
        assert.equal(await store.getUser('a:b%3A*'), null);
      });

      it('moves a device to another name, keeping its id, unless that name has one', async () => {
        const d = device('ALICE');
        await store.putDevice(d, false);
        assert.equal(await store.moveDevice('nobody', 'alice'), 'missing');
        assert.equal(await store.moveDevice('ALICE', 'alice'), 'moved');
        assert.deepEqual(await store.getDeviceByUser('alice'), { ...d, user: 'alice' });
        assert.deepEqual(await store.getDevice(d.deviceId), { ...d, user: 'alice' });
        assert.equal(await store.getDeviceByUser('ALICE'), null);
        await store.putDevice(device('Alice'), false);
        assert.equal(await store.moveDevice('Alice', 'alice'), 'exists');
        assert.equal((await store.getDeviceByUser('alice'))?.deviceId, d.deviceId);
      });

      it('start-up merge: switches, devices and approvals move to the canonical name', async () => {
        await checkMerge(store, clock.now());
      });
    });

    describe('devices', () => {
      it('binds a device and finds it by id and by user', async () => {
        const d = device('alice', { pushToken: 'tok', pushPlatform: 'ios' });
        assert.equal(await store.putDevice(d, false), 'created');
        assert.deepEqual(await store.getDevice(d.deviceId), d);
        assert.deepEqual(await store.getDeviceByUser('alice'), d);
        assert.equal(await store.getDevice('no-such-device'), null);
        assert.equal(await store.getDeviceByUser('bob'), null);
      });

      it('refuses a second device without replace and changes nothing', async () => {
        const d1 = device('alice');
        const d2 = device('alice');
        await store.putDevice(d1, false);
        assert.equal(await store.putDevice(d2, false), 'exists');
        assert.deepEqual(await store.getDeviceByUser('alice'), d1);
        assert.equal(await store.getDevice(d2.deviceId), null);
      });

      it('replaces the device, dropping the old one and its pending requests but not decided ones', async () => {
        const d1 = device('alice');
        const d2 = device('alice');
        await store.putDevice(d1, false);
        const pending = request(clock, d1);
        const decided = request(clock, d1, { clientIp: '198.51.100.1' });
        await store.createRequest(pending, clock.now());
        await store.createRequest(decided, clock.now());
        await store.decideRequest(decided.id, 'approved', clock.now());

        assert.equal(await store.putDevice(d2, true), 'created');
        assert.equal(await store.getDevice(d1.deviceId), null);
        assert.deepEqual(await store.getDeviceByUser('alice'), d2);
        assert.equal(await store.getRequest(pending.id, clock.now()), null);
        assert.deepEqual(await store.listPendingRequests(d1.deviceId, clock.now()), []);
        assert.equal((await store.getRequest(decided.id, clock.now()))?.status, 'approved');
        // The dropped request no longer blocks a new one for the same user, IP and type.
        const again = await store.createRequest(request(clock, d2), clock.now());
        assert.equal(again.created, true);
      });

      it('replace with no existing device just creates', async () => {
        const d = device('alice');
        assert.equal(await store.putDevice(d, true), 'created');
        assert.deepEqual(await store.getDeviceByUser('alice'), d);
      });

      it('rejects a device id that belongs to another user', async () => {
        const d = device('alice');
        await store.putDevice(d, false);
        await assert.rejects(store.putDevice({ ...d, user: 'bob' }, false), (err: unknown) =>
          isMailotpError(err, 'MAILOTP_ERR_BAD_INPUT'),
        );
        assert.deepEqual(await store.getDevice(d.deviceId), d);
        assert.equal(await store.getDeviceByUser('bob'), null);
      });

      it('removes the device and the pending requests addressed to it', async () => {
        const d = device('alice');
        const other = device('bob');
        await store.putDevice(d, false);
        await store.putDevice(other, false);
        const r = request(clock, d);
        const r2 = request(clock, other);
        await store.createRequest(r, clock.now());
        await store.createRequest(r2, clock.now());

        assert.deepEqual(await store.removeDevice('alice'), d);
        assert.equal(await store.getDevice(d.deviceId), null);
        assert.equal(await store.getDeviceByUser('alice'), null);
        assert.equal(await store.getRequest(r.id, clock.now()), null);
        assert.deepEqual(await store.listPendingRequests(d.deviceId, clock.now()), []);
        assert.equal(await store.removeDevice('alice'), null);
        // Bob's device and request are untouched.
        assert.deepEqual(await store.getDeviceByUser('bob'), other);
        assert.deepEqual(await store.listPendingRequests(other.deviceId, clock.now()), [r2]);
        // Alice can bind again without replace.
        assert.equal(await store.putDevice(device('alice'), false), 'created');
      });

      it('handles names with separators and escapes in them', async () => {
        const d1 = device('a:b%3A@example.com', { deviceId: 'dev:1%3A' });
        const d2 = device('a:b%3A@example.com', { deviceId: 'dev:%2' });
        await store.putDevice(d1, false);
        const r = request(clock, d1, { clientIp: '::1' });
        await store.createRequest(r, clock.now());
        assert.deepEqual(await store.listPendingRequests(d1.deviceId, clock.now()), [r]);
        assert.equal(await store.putDevice(d2, true), 'created');
        assert.equal(await store.getRequest(r.id, clock.now()), null);
        assert.deepEqual(await store.removeDevice(d1.user), d2);
        // (user "a", ip "::1") and (user "a:", ip ":1") are different triples.
        const da = device('a');
        const dcolon = device('a:');
        const ra = await store.createRequest(request(clock, da, { clientIp: '::1' }), clock.now());
        const rc = await store.createRequest(request(clock, dcolon, { clientIp: ':1' }), clock.now());
        assert.equal(ra.created, true);
        assert.equal(rc.created, true);
      });

      it('sets and clears the push token', async () => {
        const d = device('alice');
        await store.putDevice(d, false);
        await store.setPushToken(d.deviceId, 'fcm-token', 'android');
        assert.deepEqual(await store.getDevice(d.deviceId), { ...d, pushToken: 'fcm-token', pushPlatform: 'android' });
        assert.deepEqual(await store.getDeviceByUser('alice'), {
          ...d,
          pushToken: 'fcm-token',
          pushPlatform: 'android',
        });
        await store.setPushToken(d.deviceId, null, null);
        const cleared = await store.getDevice(d.deviceId);
        assert.deepEqual(cleared, d);
        assert.ok(cleared && !('pushToken' in cleared) && !('pushPlatform' in cleared));
      });

      it('records when the device was last used, and ignores unknown devices', async () => {
        const d = device('alice');
        await store.putDevice(d, false);
        await store.touchDevice(d.deviceId, 1_234);
        assert.deepEqual(await store.getDeviceByUser('alice'), { ...d, lastUsedAt: 1_234 });
        await store.touchDevice('ghost', 1);
        assert.equal(await store.getDevice('ghost'), null);
      });

      it('sets, replaces and clears the Web Push subscription without touching the push token', async () => {
        const d = device('alice', { pushToken: 'tok', pushPlatform: 'ios' });
        await store.putDevice(d, false);
        const sub = { endpoint: 'https://push.example.net/send/abc', keys: { p256dh: 'BPk', auth: 'au' } };
        await store.setWebPush(d.deviceId, sub);
        assert.deepEqual(await store.getDeviceByUser('alice'), { ...d, webPush: sub });
        const next = { endpoint: 'https://push.example.net/send/def', keys: { p256dh: 'BQ', auth: 'x' } };
        await store.setWebPush(d.deviceId, next);
        assert.deepEqual(await store.getDevice(d.deviceId), { ...d, webPush: next });
        await store.setWebPush(d.deviceId, null);
        const cleared = await store.getDevice(d.deviceId);
        assert.deepEqual(cleared, d);
        assert.ok(cleared && !('webPush' in cleared));
        await store.setWebPush('ghost', sub);
        assert.equal(await store.getDevice('ghost'), null);
      });

      it('ignores a push token for an unknown device', async () => {
        await store.setPushToken('ghost', 'tok', 'ios');
        assert.equal(await store.getDevice('ghost'), null);
      });
    });

    describe('approvals', () => {
      it('stores an approval per scope and returns it until it expires', async () => {
        const a = approval(clock, 'alice', { expiresAt: clock.now() + 1_000, requestId: 'r1' });
        const star = approval(clock, 'alice', { scope: '*', clientIp: '198.51.100.9' });
        await store.putApproval(a, clock.now());
        await store.putApproval(star, clock.now());
        assert.deepEqual(await store.getApproval('alice', a.scope, clock.now()), a);
        assert.deepEqual(await store.getApproval('alice', '*', clock.now()), star);
        assert.equal(await store.getApproval('alice', '192.0.2.1', clock.now()), null);
        assert.equal(await store.getApproval('bob', a.scope, clock.now()), null);

        clock.advance(999);
        assert.deepEqual(await store.getApproval('alice', a.scope, clock.now()), a);
        clock.advance(1);
        assert.equal(await store.getApproval('alice', a.scope, clock.now()), null);
        assert.deepEqual(await store.listApprovals('alice', clock.now()), [star]);
        assert.deepEqual(await store.listApprovals(null, clock.now()), [star]);
      });

      it('replaces the approval of the same scope', async () => {
        const a = approval(clock, 'alice', { expiresAt: clock.now() + 1_000 });
        await store.putApproval(a, clock.now());
        clock.advance(500);
        const renewed = approval(clock, 'alice', { expiresAt: clock.now() + 5_000 });
        await store.putApproval(renewed, clock.now());
        clock.advance(1_000);
        assert.deepEqual(await store.getApproval('alice', a.scope, clock.now()), renewed);
        assert.equal((await store.listApprovals('alice', clock.now())).length, 1);
      });

      it('lists unexpired approvals of one user or of all, ordered by approvedAt', async () => {
        const t = clock.now();
        const b1 = approval(clock, 'bob', { scope: '10.0.0.1', clientIp: '10.0.0.1', approvedAt: t + 3 });
        const a1 = approval(clock, 'alice', { scope: '10.0.0.2', clientIp: '10.0.0.2', approvedAt: t + 2 });
        const a2 = approval(clock, 'alice', { scope: '10.0.0.3', clientIp: '10.0.0.3', approvedAt: t + 1 });
        const old = approval(clock, 'carol', { approvedAt: t, expiresAt: t + 10 });
        for (const a of [b1, a1, a2, old]) await store.putApproval(a, t);
        clock.advance(10);
        assert.deepEqual(await store.listApprovals('alice', clock.now()), [a2, a1]);
        assert.deepEqual(await store.listApprovals('bob', clock.now()), [b1]);
        assert.deepEqual(await store.listApprovals('carol', clock.now()), []);
        assert.deepEqual(await store.listApprovals('nobody', clock.now()), []);
        assert.deepEqual(await store.listApprovals(null, clock.now()), [a2, a1, b1]);
      });

      it('deletes all approvals of a user', async () => {
        await store.putApproval(approval(clock, 'alice', { scope: '10.0.0.1', clientIp: '10.0.0.1' }), clock.now());
        await store.putApproval(approval(clock, 'alice', { scope: '*', clientIp: '10.0.0.2' }), clock.now());
        const bob = approval(clock, 'bob');
        await store.putApproval(bob, clock.now());

        assert.equal(await store.deleteApprovals('alice'), 2);
        assert.deepEqual(await store.listApprovals('alice', clock.now()), []);
        assert.deepEqual(await store.listApprovals(null, clock.now()), [bob]);
        assert.equal(await store.deleteApprovals('alice'), 0);
        // A user whose approvals were all deleted can get new ones, listed everywhere.
        const again = approval(clock, 'alice', { approvedAt: clock.now() + 1 });
        await store.putApproval(again, clock.now());
        assert.deepEqual(await store.listApprovals(null, clock.now()), [bob, again]);
      });

      it('deletes approvals by client IP, whatever their scope', async () => {
        const ip = '10.0.0.1';
        const t = clock.now();
        const byIp = approval(clock, 'alice', { scope: ip, clientIp: ip, approvedAt: t });
        const star = approval(clock, 'alice', { scope: '*', clientIp: ip, approvedAt: t + 1 });
        const keep = approval(clock, 'alice', { scope: '10.0.0.2', clientIp: '10.0.0.2', approvedAt: t + 2 });
        const bobs = approval(clock, 'bob', { scope: ip, clientIp: ip, approvedAt: t + 3 });
        for (const a of [byIp, star, keep, bobs]) await store.putApproval(a, t);

        assert.equal(await store.deleteApprovals('alice', ip), 2);
        assert.deepEqual(await store.listApprovals('alice', clock.now()), [keep]);
        assert.deepEqual(await store.listApprovals('bob', clock.now()), [bobs]);
        assert.equal(await store.deleteApprovals('alice', '192.0.2.99'), 0);
        assert.equal(await store.deleteApprovals('alice', '10.0.0.2'), 1);
        assert.deepEqual(await store.listApprovals(null, clock.now()), [bobs]);
      });
    });

    describe('requests', () => {
      let dev: DeviceRecord;
      beforeEach(async () => {
        dev = device('alice');
        await store.putDevice(dev, false);
      });

      it('creates a request and returns it', async () => {
        // Every optional field round-trips.
        const r = request(clock, dev, {
          clientName: 'Thunderbird',
          choices: [12, 47, 90],
          matchNumber: 47,
          protocol: 'smtp',
        });
        assert.deepEqual(await store.createRequest(r, clock.now()), { created: true, request: r });
        assert.deepEqual(await store.getRequest(r.id, clock.now()), r);
        assert.deepEqual(await store.listPendingRequests(dev.deviceId, clock.now()), [r]);
        assert.equal(await store.getRequest('no-such-request', clock.now()), null);
        const decided = await store.decideRequest(r.id, 'approved', clock.now());
        assert.deepEqual(decided, { status: 'ok', request: { ...r, status: 'approved', decidedAt: clock.now() } });
        assert.deepEqual(await store.getRequest(r.id, clock.now()), { ...r, status: 'approved', decidedAt: clock.now() });
      });

      it('joins the pending request of the same user, IP and type', async () => {
        const first = request(clock, dev);
        await store.createRequest(first, clock.now());
        clock.advance(10);
        const second = request(clock, dev);
        assert.deepEqual(await store.createRequest(second, clock.now()), { created: false, request: first });
        assert.equal(await store.getRequest(second.id, clock.now()), null);
        // Another type or another IP is another request.
        assert.equal((await store.createRequest(request(clock, dev, { type: 'connection' }), clock.now())).created, true);
        assert.equal(
          (await store.createRequest(request(clock, dev, { clientIp: '198.51.100.1' }), clock.now())).created,
          true,
        );
        assert.equal((await store.listPendingRequests(dev.deviceId, clock.now())).length, 3);
      });

      it('opens a request under a cap only while its counter is below the maximum; joining never counts', async () => {
        const cap = { key: 'push:alice', windowMs: 3_600_000, max: 2 };
        const first = request(clock, dev, { clientIp: '192.0.2.1' });
        assert.deepEqual(await store.createRequest(first, clock.now(), cap), { created: true, request: first });
        // Joins do not count, however many.
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(await store.createRequest(request(clock, dev, { clientIp: '192.0.2.1' }), clock.now(), cap), { created: false, request: first });
        }
        assert.equal(await store.count(cap.key, cap.windowMs, clock.now()), 1);
        const second = request(clock, dev, { clientIp: '192.0.2.2' });
        assert.equal((await store.createRequest(second, clock.now(), cap)).created, true);
        const third = request(clock, dev, { clientIp: '192.0.2.3' });
        assert.deepEqual(await store.createRequest(third, clock.now(), cap), { created: false, request: null });
        assert.equal(await store.getRequest(third.id, clock.now()), null, 'a capped request is not stored');
        assert.equal(await store.count(cap.key, cap.windowMs, clock.now()), 2, 'nor counted');
        // At the cap, the pending request of an address can still be joined.
        assert.deepEqual(await store.createRequest(request(clock, dev, { clientIp: '192.0.2.2' }), clock.now(), cap), { created: false, request: second });
        clock.advance(cap.windowMs);
        assert.equal((await store.createRequest(third, clock.now(), cap)).created, true, 'a new window');
      });

      it('lets a burst of concurrent new requests open no more than the cap', async () => {
        const cap = { key: 'push:burst', windowMs: 3_600_000, max: 3 };
        const rs = Array.from({ length: 12 }, (_, i) => request(clock, dev, { clientIp: `192.0.2.${i % 6}` }));
        const results = await Promise.all(rs.map((r) => store.createRequest(r, clock.now(), cap)));
        assert.equal(results.filter((x) => x.created).length, 3);
        assert.equal(await store.count(cap.key, cap.windowMs, clock.now()), 3);
        assert.equal((await store.listPendingRequests(dev.deviceId, clock.now())).length, 3);
      });

      it('creates a new request once the pending one has expired', async () => {
        const first = request(clock, dev, { expiresAt: clock.now() + 1_000 });
        await store.createRequest(first, clock.now());
        clock.advance(1_000);
        const second = request(clock, dev);
        assert.deepEqual(await store.createRequest(second, clock.now()), { created: true, request: second });
        assert.equal(await store.getRequest(first.id, clock.now()), null);
        assert.deepEqual(await store.getRequest(second.id, clock.now()), second);
      });

      it('creates a new request once the pending one is decided', async () => {
        const first = request(clock, dev);
        await store.createRequest(first, clock.now());
        await store.decideRequest(first.id, 'denied', clock.now());
        const second = request(clock, dev);
        assert.equal((await store.createRequest(second, clock.now())).created, true);
        assert.deepEqual(await store.listPendingRequests(dev.deviceId, clock.now()), [second]);
      });

      it('rejects a reused request id', async () => {
        const r = request(clock, dev);
        await store.createRequest(r, clock.now());
        await store.decideRequest(r.id, 'approved', clock.now());
        await assert.rejects(store.createRequest({ ...r, status: 'pending' }, clock.now()), (err: unknown) =>
          isMailotpError(err, 'MAILOTP_ERR_BAD_INPUT'),
        );
        assert.equal((await store.getRequest(r.id, clock.now()))?.status, 'approved');
      });

      it('forgets a request, decided or not, once it expires', async () => {
        const pending = request(clock, dev, { expiresAt: clock.now() + 1_000 });
        const decided = request(clock, dev, { clientIp: '198.51.100.1', expiresAt: clock.now() + 1_000 });
        await store.createRequest(pending, clock.now());
        await store.createRequest(decided, clock.now());
        await store.decideRequest(decided.id, 'approved', clock.now());
        clock.advance(999);
        assert.deepEqual(await store.getRequest(pending.id, clock.now()), pending);
        assert.equal((await store.getRequest(decided.id, clock.now()))?.status, 'approved');
        clock.advance(1);
        assert.equal(await store.getRequest(pending.id, clock.now()), null);
        assert.equal(await store.getRequest(decided.id, clock.now()), null);
      });

      it('lists only pending, unexpired requests of the device, oldest first', async () => {
        const t = clock.now();
        const newer = request(clock, dev, { clientIp: '10.0.0.1', createdAt: t + 2 });
        const older = request(clock, dev, { clientIp: '10.0.0.2', createdAt: t + 1 });
        const shortLived = request(clock, dev, { clientIp: '10.0.0.3', createdAt: t, expiresAt: t + 100 });
        const decided = request(clock, dev, { clientIp: '10.0.0.4', createdAt: t });
        const otherDev = device('bob');
        await store.putDevice(otherDev, false);
        const others = request(clock, otherDev, { createdAt: t });
        for (const r of [newer, older, shortLived, decided, others]) await store.createRequest(r, t);
        await store.decideRequest(decided.id, 'approved', t);

        assert.deepEqual(await store.listPendingRequests(dev.deviceId, t), [shortLived, older, newer]);
        clock.advance(100);
        assert.deepEqual(await store.listPendingRequests(dev.deviceId, clock.now()), [older, newer]);
        assert.deepEqual(await store.listPendingRequests(otherDev.deviceId, clock.now()), [others]);
        assert.deepEqual(await store.listPendingRequests('no-such-device', clock.now()), []);
      });

      it('decides a pending request once', async () => {
        const r = request(clock, dev);
        await store.createRequest(r, clock.now());
        clock.advance(7);
        const decided: RequestRecord = { ...r, status: 'approved', decidedAt: clock.now() };
        assert.deepEqual(await store.decideRequest(r.id, 'approved', clock.now()), { status: 'ok', request: decided });
        assert.deepEqual(await store.getRequest(r.id, clock.now()), decided);
        assert.deepEqual(await store.listPendingRequests(dev.deviceId, clock.now()), []);

        clock.advance(1);
        assert.deepEqual(await store.decideRequest(r.id, 'denied', clock.now()), {
          status: 'already-decided',
          request: decided,
        });
        assert.deepEqual(await store.getRequest(r.id, clock.now()), decided);
      });

      it('records a denial', async () => {
        const r = request(clock, dev);
        await store.createRequest(r, clock.now());
        const res = await store.decideRequest(r.id, 'denied', clock.now());
        assert.equal(res.status, 'ok');
        assert.equal((await store.getRequest(r.id, clock.now()))?.status, 'denied');
      });

      it('answers not-found for unknown and for expired requests', async () => {
        assert.deepEqual(await store.decideRequest('no-such-request', 'approved', clock.now()), {
          status: 'not-found',
        });
        const r = request(clock, dev, { expiresAt: clock.now() + 1_000 });
        await store.createRequest(r, clock.now());
        clock.advance(1_000);
        assert.deepEqual(await store.decideRequest(r.id, 'approved', clock.now()), { status: 'not-found' });
        // Still pending underneath: an earlier clock sees it undecided.
        assert.deepEqual(await store.getRequest(r.id, clock.now() - 1), r);
      });

      it('creates exactly one of ten concurrent requests for the same user, IP and type', async () => {
        const rs = Array.from({ length: 10 }, () => request(clock, dev));
        const results = await Promise.all(rs.map((r) => store.createRequest(r, clock.now())));
        const created = results.filter((x) => x.created);
        assert.equal(created.length, 1);
        const winner = created[0]?.request.id;
        assert.ok(winner !== undefined);
        for (const x of results) assert.equal(x.request?.id, winner);
        assert.deepEqual(
          (await store.listPendingRequests(dev.deviceId, clock.now())).map((r) => r.id),
          [winner],
        );
      });

      it('lets exactly one of ten concurrent decisions win', async () => {
        const r = request(clock, dev);
        await store.createRequest(r, clock.now());
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.decideRequest(r.id, i % 2 ? 'approved' : 'denied', clock.now())),
        );
        const ok = results.filter((x) => x.status === 'ok');
        assert.equal(ok.length, 1);
        assert.equal(results.filter((x) => x.status === 'already-decided').length, 9);
        const final = await store.getRequest(r.id, clock.now());
        for (const x of results) {
          assert.ok(x.status !== 'not-found');
          assert.deepEqual(x.request, final);
        }
      });
    });

    describe('counters', () => {
      const W = 60_000;

      it('counts hits in the current window', async () => {
        clock.set(100 * W + 1);
        assert.equal(await store.count('login:alice', W, clock.now()), 0);
        assert.equal(await store.hit('login:alice', W, clock.now()), 1);
        assert.equal(await store.hit('login:alice', W, clock.now()), 2);
        clock.advance(W - 2);
        assert.equal(await store.hit('login:alice', W, clock.now()), 3);
        assert.equal(await store.count('login:alice', W, clock.now()), 3);
        assert.equal(await store.count('login:bob', W, clock.now()), 0);
        // Another window length is another counter.
        assert.equal(await store.count('login:alice', 2 * W, clock.now()), 0);
      });

      it('starts over in the next window', async () => {
        clock.set(100 * W + W - 1);
        await store.hit('k', W, clock.now());
        await store.hit('k', W, clock.now());
        clock.advance(1);
        assert.equal(await store.count('k', W, clock.now()), 0);
        assert.equal(await store.hit('k', W, clock.now()), 1);
      });

      it('clears the current window', async () => {
        await store.hit('k', W, clock.now());
        await store.hit('k', W, clock.now());
        await store.hit('other', W, clock.now());
        await store.clear('k', W, clock.now());
        assert.equal(await store.count('k', W, clock.now()), 0);
        assert.equal(await store.count('other', W, clock.now()), 1);
        assert.equal(await store.hit('k', W, clock.now()), 1);
      });

      it('takes a hit back from the window it was made in, never below zero', async () => {
        clock.set(100 * W + W - 1);
        const at = clock.now();
        await store.hit('r', W, at);
        await store.hit('r', W, at);
        clock.advance(1);
        await store.hit('r', W, clock.now());
        // Settled after the window turned: the old window goes down, the new one stays.
        await store.release('r', W, at);
        assert.equal(await store.count('r', W, at), 1);
        assert.equal(await store.count('r', W, clock.now()), 1);
        await store.release('r', W, clock.now());
        await store.release('r', W, clock.now());
        await store.release('never', W, clock.now());
        assert.equal(await store.count('r', W, clock.now()), 0);
        assert.equal(await store.count('never', W, clock.now()), 0);
        assert.equal(await store.hit('r', W, clock.now()), 1);
      });

      it('counts every one of concurrent hits', async () => {
        const counts = await Promise.all(Array.from({ length: 20 }, () => store.hit('burst', W, clock.now())));
        assert.deepEqual(
          [...counts].sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      });
    });

    describe('values', () => {
      it('keeps a value until its ttl runs out by the caller\'s clock', async () => {
        await store.setValue('cool:alice', 'deny', MINUTE, clock.now());
        assert.equal(await store.getValue('cool:alice', clock.now()), 'deny');
        assert.equal(await store.getValue('cool:bob', clock.now()), null);
        clock.advance(MINUTE - 1);
        assert.equal(await store.getValue('cool:alice', clock.now()), 'deny');
        clock.advance(1);
        assert.equal(await store.getValue('cool:alice', clock.now()), null);
      });

      it('overwrites, and deletes', async () => {
        await store.setValue('k', 'one', MINUTE, clock.now());
        await store.setValue('k', 'two', 2 * MINUTE, clock.now());
        clock.advance(MINUTE + 1);
        assert.equal(await store.getValue('k', clock.now()), 'two');
        assert.equal(await store.deleteValue('k', clock.now()), true);
        assert.equal(await store.deleteValue('k', clock.now()), false);
        assert.equal(await store.getValue('k', clock.now()), null);
      });

      it('sets if absent only once, and again once the old value expired', async () => {
        assert.equal(await store.setValueIfAbsent('once', 'a', MINUTE, clock.now()), true);
        assert.equal(await store.setValueIfAbsent('once', 'b', MINUTE, clock.now()), false);
        assert.equal(await store.getValue('once', clock.now()), 'a');
        clock.advance(MINUTE);
        assert.equal(await store.setValueIfAbsent('once', 'c', MINUTE, clock.now()), true);
        assert.equal(await store.getValue('once', clock.now()), 'c');
      });

      it('gives a value to exactly one of concurrent takers, and none once expired', async () => {
        await store.setValue('code', 'x', MINUTE, clock.now());
        const taken = await Promise.all(Array.from({ length: 10 }, () => store.takeValue('code', clock.now())));
        assert.deepEqual(taken.filter((v) => v !== null), ['x']);
        await store.setValue('code', 'y', MINUTE, clock.now());
        clock.advance(MINUTE);
        assert.equal(await store.takeValue('code', clock.now()), null);
      });

      it('lets exactly one of concurrent setters win', async () => {
        const won = await Promise.all(Array.from({ length: 10 }, (_, i) => store.setValueIfAbsent('race', String(i), MINUTE, clock.now())));
        assert.equal(won.filter(Boolean).length, 1);
      });

      it('replaces a value only while it holds the expected one, unexpired; of concurrent replacers one wins', async () => {
        assert.equal(await store.replaceValue('cas', 'a', 'b', MINUTE, clock.now()), false, 'nothing there');
        await store.setValue('cas', 'a', MINUTE, clock.now());
        assert.equal(await store.replaceValue('cas', 'x', 'b', MINUTE, clock.now()), false, 'not the expected value');
        assert.equal(await store.getValue('cas', clock.now()), 'a');
        assert.equal(await store.replaceValue('cas', 'a', 'b', 2 * MINUTE, clock.now()), true);
        assert.equal(await store.getValue('cas', clock.now()), 'b');
        clock.advance(MINUTE + 1);
        assert.equal(await store.getValue('cas', clock.now()), 'b', 'the new ttl applies');
        const won = await Promise.all(Array.from({ length: 10 }, (_, i) => store.replaceValue('cas', 'b', `n${i}`, MINUTE, clock.now())));
        assert.equal(won.filter(Boolean).length, 1);
        assert.equal(await store.getValue('cas', clock.now()), `n${won.indexOf(true)}`);
        clock.advance(MINUTE + 1);
        assert.equal(await store.replaceValue('cas', `n${won.indexOf(true)}`, 'c', MINUTE, clock.now()), false, 'expired');
        assert.equal(await store.getValue('cas', clock.now()), null);
      });

      it('keeps values with awkward keys apart', async () => {
        await store.setValue('a:b', '1', MINUTE, clock.now());
        await store.setValue('a%3Ab', '2', MINUTE, clock.now());
        assert.equal(await store.getValue('a:b', clock.now()), '1');
        assert.equal(await store.getValue('a%3Ab', clock.now()), '2');
      });
    });

    describe('short lists', () => {
      it('keeps the newest items up to the length, newest first, each until its ttl', async () => {
        await store.pushToList('recent:alice', 'r1', 3, MINUTE, clock.now());
        clock.advance(1_000);
        for (const v of ['r2', 'r3', 'r4']) await store.pushToList('recent:alice', v, 3, MINUTE, clock.now());
        assert.deepEqual(await store.readList('recent:alice', clock.now()), ['r4', 'r3', 'r2']);
        assert.deepEqual(await store.readList('recent:bob', clock.now()), []);
        await store.pushToList('recent:alice', 'r5', 3, 10 * MINUTE, clock.now());
        clock.advance(MINUTE);
        assert.deepEqual(await store.readList('recent:alice', clock.now()), ['r5']);
      });

      it('keeps every one of concurrent pushes', async () => {
        await Promise.all(Array.from({ length: 8 }, (_, i) => store.pushToList('l', String(i), 20, MINUTE, clock.now())));
        assert.deepEqual((await store.readList('l', clock.now())).sort(), ['0', '1', '2', '3', '4', '5', '6', '7']);
      });
    });

    describe('events', () => {
      it('delivers to every subscriber until it unsubscribes', async () => {
        const a: PublishedEvent[] = [];
        const b: PublishedEvent[] = [];
        const unsubA = store.subscribe((e) => a.push(e));
        store.subscribe((e) => b.push(e));
        const dev = device('alice');
        const ev = opened(request(clock, dev, { choices: [] }));
        await publishUntil(store, () => ev, () => a.length > 0 && b.length > 0);
        assert.deepEqual(a[0], ev);
        assert.deepEqual(b[0], ev);

        unsubA();
        const aBefore = a.length;
        const last: StoreEvent = { type: 'request.decided', request: request(clock, dev, { status: 'approved' }) };
        await store.publish(last);
        await waitFor(() => b.some((e) => e.type === 'request.decided'), 'delivery to the remaining subscriber');
        await sleep(20);
        assert.equal(a.length, aBefore);
        assert.deepEqual(b.at(-1), last);
      });

      it('never runs subscribers inside publish, and a throwing subscriber harms no one', async () => {
        const got: PublishedEvent[] = [];
        let throws = 0;
        store.subscribe(() => {
          throws++;
          throw new Error('subscriber bug');
        });
        store.subscribe((e) => got.push(e));
        const ev = opened(request(clock, device('alice')));
        const p = store.publish(ev);
        assert.equal(got.length, 0);
        assert.equal(throws, 0);
        await p;
        await publishUntil(store, () => ev, () => got.length > 0);
        assert.ok(throws > 0);
        assert.deepEqual(got[0], ev);
      });
    });

    describe('lifecycle', () => {
      it('answers ping', async () => {
        await store.ping();
      });

      it('closes idempotently and then fails closed', async () => {
        await store.close();
        await store.close();
        await assertUnavailable(store.ping());
        await assertUnavailable(store.getUser('alice'));
      });
    });
  });
}
