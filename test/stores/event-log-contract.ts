import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import type { DeviceRecord, PublishedEvent, RequestRecord, StoreEvent } from '../../src/core/types.js';
import type { LoggedEvent, Store } from '../../src/core/ports/store.js';
import type { MakeStore } from './store-contract.js';

const MINUTE = 60_000;
const RETENTION = 6 * MINUTE;

let seq = 0;
function uid(prefix: string): string {
  seq += 1;
  return `${prefix}-${seq}`;
}

function device(user: string): DeviceRecord {
  return { deviceId: uid('evdev'), user, name: 'phone', tokenHash: 'cd'.repeat(32), createdAt: 1 };
}

function request(clock: FakeClock, dev: DeviceRecord, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id: uid('evreq'),
    type: 'connection',
    user: dev.user,
    deviceId: dev.deviceId,
    protocol: 'imap',
    clientIp: `192.0.2.${seq % 250}`,
    createdAt: clock.now(),
    expiresAt: clock.now() + MINUTE,
    status: 'pending',
    ...over,
  };
}

const opened = (r: RequestRecord): StoreEvent => ({ type: 'request.opened', request: r });
const decided = (r: RequestRecord): StoreEvent => ({ type: 'request.decided', request: { ...r, status: 'approved' } });
const ids = (events: readonly LoggedEvent[]): number[] => events.map((e) => e.eventId);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Device event logs and the expiry claim: the part of the Store contract that issue #4 added. */
export function eventLogContract(name: string, make: MakeStore): void {
  describe(`Store contract, event logs and expiry: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let clock: FakeClock;
    let dev: DeviceRecord;

    beforeEach(async () => {
      ({ store, cleanup } = await make());
      clock = new FakeClock();
      dev = device('alice');
      await store.putDevice(dev, false);
    });
    afterEach(async () => {
      await cleanup();
    });

    describe('event logs', () => {
      it('gives increasing ids and keeps each device\'s events in order', async () => {
        assert.equal(await store.lastEventId(), 0);
        const other = device('bob');
        const r1 = request(clock, dev);
        const a1 = await store.appendEvent(opened(r1), clock.now(), RETENTION);
        const a2 = await store.appendEvent(decided(r1), clock.now(), RETENTION);
        const b1 = await store.appendEvent(opened(request(clock, other)), clock.now(), RETENTION);
        assert.deepEqual(a1, { ...opened(r1), eventId: a1.eventId });
        assert.ok(a1.eventId > 0 && a1.eventId < a2.eventId && a2.eventId < b1.eventId);
        assert.equal(await store.lastEventId(), b1.eventId);

        assert.deepEqual(await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION), { events: [a1, a2], complete: true });
        assert.deepEqual(await store.readEvents(dev.deviceId, a1.eventId, clock.now(), RETENTION), { events: [a2], complete: true });
        assert.deepEqual(await store.readEvents(dev.deviceId, a2.eventId, clock.now(), RETENTION), { events: [], complete: true });
        assert.deepEqual(await store.readEvents(other.deviceId, 0, clock.now(), RETENTION), { events: [b1], complete: true });
        assert.deepEqual(await store.readEvents('no-such-device', 0, clock.now(), RETENTION), { events: [], complete: true });
      });

      it('tells a reader with an id it never gave out (from before the store was wiped) to start over', async () => {
        const e1 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        assert.equal((await store.readEvents(dev.deviceId, e1.eventId + 1, clock.now(), RETENTION)).complete, false);
        assert.equal((await store.readEvents('no-such-device', e1.eventId + 1, clock.now(), RETENTION)).complete, false);
        assert.equal((await store.readEvents(dev.deviceId, e1.eventId, clock.now(), RETENTION)).complete, true);
      });

      it('gives an event its own id even when it carries one', async () => {
        const first = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        const again = await store.appendEvent({ ...opened(request(clock, dev)), eventId: first.eventId }, clock.now(), RETENTION);
        assert.equal(again.eventId > first.eventId, true);
      });

      it('gives concurrent appends distinct ids, read back in id order', async () => {
        const appended = await Promise.all(
          Array.from({ length: 20 }, () => store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION)),
        );
        assert.equal(new Set(ids(appended)).size, 20);
        const read = await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION);
        assert.deepEqual(ids(read.events), [...ids(appended)].sort((a, b) => a - b));
      });

      it('publishes appended events with their id', async () => {
        const got: PublishedEvent[] = [];
        store.subscribe((e) => got.push(e));
        // A networked subscription becomes active a little after subscribe(): append until one arrives.
        const deadline = Date.now() + 5_000;
        let last: LoggedEvent | undefined;
        while (got.length === 0) {
          assert.ok(Date.now() < deadline, 'no appended event arrived');
          last = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
          await sleep(20);
        }
        const seen = got.at(-1);
        assert.ok(last && seen && seen.type !== 'pairing.link');
        assert.equal(typeof seen.eventId, 'number');
        const match = (await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION)).events.find((e) => e.eventId === seen.eventId);
        assert.deepEqual(seen, match);
      });

      it('logs a device notice in that device\'s log among its request events, and publishes it', async () => {
        const got: PublishedEvent[] = [];
        store.subscribe((e) => got.push(e));
        const other = device('bob');
        const r1 = request(clock, dev);
        const a1 = await store.appendEvent(opened(r1), clock.now(), RETENTION);
        const notice: StoreEvent = { type: 'device.notice', deviceId: dev.deviceId, notice: { kind: 'recovery-code-used', user: 'alice', left: 7, at: clock.now() } };
        const n1 = await store.appendEvent(notice, clock.now(), RETENTION);
        const a2 = await store.appendEvent(decided(r1), clock.now(), RETENTION);
        assert.deepEqual(n1, { ...notice, eventId: n1.eventId });
        assert.ok(a1.eventId < n1.eventId && n1.eventId < a2.eventId);
        assert.deepEqual(await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION), { events: [a1, n1, a2], complete: true });
        assert.deepEqual(await store.readEvents(dev.deviceId, a1.eventId, clock.now(), RETENTION), { events: [n1, a2], complete: true });
        assert.deepEqual(await store.readEvents(other.deviceId, 0, clock.now(), RETENTION), { events: [], complete: true });
        // Published as appended (a networked subscription may miss the first: append until one comes).
        const deadline = Date.now() + 5_000;
        while (!got.some((e) => e.type === 'device.notice')) {
          assert.ok(Date.now() < deadline, 'no published notice arrived');
          await sleep(20);
          if (!got.some((e) => e.type === 'device.notice')) await store.appendEvent(notice, clock.now(), RETENTION);
        }
        const seen = got.find((e) => e.type === 'device.notice');
        const logged = (await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION)).events.find((e) => e.eventId === seen?.eventId);
        assert.deepEqual(seen, logged);
      });

      it('drops events past the retention, and a reader from before them is told it missed some', async () => {
        const e1 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        clock.advance(RETENTION / 2);
        const e2 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        clock.advance(RETENTION / 2 + 1);
        // e1 is past the retention now, whether or not an append trimmed it yet.
        assert.deepEqual(await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION), { events: [e2], complete: false });
        assert.deepEqual(await store.readEvents(dev.deviceId, e1.eventId, clock.now(), RETENTION), { events: [e2], complete: true });
        const e3 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        assert.equal((await store.readEvents(dev.deviceId, e1.eventId - 1, clock.now(), RETENTION)).complete, false);
        assert.deepEqual(await store.readEvents(dev.deviceId, e1.eventId, clock.now(), RETENTION), { events: [e2, e3], complete: true });

        clock.advance(2 * RETENTION);
        const e4 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        assert.deepEqual(await store.readEvents(dev.deviceId, e2.eventId, clock.now(), RETENTION), { events: [e4], complete: false });
        assert.deepEqual(await store.readEvents(dev.deviceId, e3.eventId, clock.now(), RETENTION), { events: [e4], complete: true });
      });

      it('lets a reader that saw the last event of an idle device catch up without loss', async () => {
        const e1 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        // Other devices keep the ids moving while this one is quiet.
        const other = device('carol');
        for (let i = 0; i < 3; i++) await store.appendEvent(opened(request(clock, other)), clock.now(), RETENTION);
        clock.advance(60 * MINUTE);
        assert.deepEqual(await store.readEvents(dev.deviceId, e1.eventId, clock.now(), RETENTION), { events: [], complete: true });
        const e2 = await store.appendEvent(opened(request(clock, dev)), clock.now(), RETENTION);
        assert.deepEqual(await store.readEvents(dev.deviceId, e1.eventId, clock.now(), RETENTION), { events: [e2], complete: true });
      });
    });

    describe('expiry', () => {
      it('claims pending requests once they expire, once, with a logged event each', async () => {
        const t = clock.now();
        const other = device('bob');
        await store.putDevice(other, false);
        const r1 = request(clock, dev, { expiresAt: t + 1_000 });
        const r2 = request(clock, dev, { expiresAt: t + 2_000 });
        const done = request(clock, dev, { expiresAt: t + 1_000 });
        const r4 = request(clock, other, { expiresAt: t + 1_000 });
        for (const r of [r1, r2, done, r4]) assert.equal((await store.createRequest(r, t)).created, true);
        await store.decideRequest(done.id, 'denied', t);

        assert.deepEqual(await store.expireRequests(t + 999, 100, RETENTION), []);
        clock.advance(1_000);
        const first = await store.expireRequests(clock.now(), 100, RETENTION);
        const byId = new Map(first.map((e) => [e.request.id, e]));
        assert.deepEqual([...byId.keys()].sort(), [r1.id, r4.id].sort());
        assert.deepEqual(byId.get(r1.id), { type: 'request.expired', request: { ...r1, status: 'expired' }, eventId: byId.get(r1.id)?.eventId });
        assert.deepEqual(await store.expireRequests(clock.now(), 100, RETENTION), []);

        assert.deepEqual(await store.listPendingRequests(dev.deviceId, clock.now() - 1), [r2]);
        assert.deepEqual((await store.getRequest(r1.id, clock.now() - 1))?.status, 'expired');
        assert.deepEqual(await store.decideRequest(r1.id, 'approved', clock.now()), { status: 'not-found' });
        const log = await store.readEvents(dev.deviceId, 0, clock.now(), RETENTION);
        assert.deepEqual(log.events, [byId.get(r1.id)]);
        // The same user, IP and type can open a new request at once.
        assert.equal((await store.createRequest(request(clock, dev, { clientIp: r1.clientIp }), clock.now())).created, true);

        clock.advance(1_000);
        assert.deepEqual((await store.expireRequests(clock.now(), 100, RETENTION)).map((e) => e.request.id), [r2.id]);
      });

      it('claims at most `limit` at a time', async () => {
        const t = clock.now();
        for (let i = 0; i < 5; i++) await store.createRequest(request(clock, dev, { expiresAt: t + 10 + i }), t);
        clock.advance(1_000);
        const sizes: number[] = [];
        for (let i = 0; i < 4; i++) sizes.push((await store.expireRequests(clock.now(), 2, RETENTION)).length);
        assert.deepEqual(sizes, [2, 2, 1, 0]);
      });

      it('hands each expired request to exactly one of ten concurrent sweeps', async () => {
        const t = clock.now();
        const rs = Array.from({ length: 3 }, () => request(clock, dev, { expiresAt: t + 100 }));
        for (const r of rs) await store.createRequest(r, t);
        clock.advance(100);
        const results = await Promise.all(Array.from({ length: 10 }, () => store.expireRequests(clock.now(), 100, RETENTION)));
        const claimed = results.flat().map((e) => e.request.id);
        assert.deepEqual([...claimed].sort(), rs.map((r) => r.id).sort());
      });

      it('claims nothing that was decided or removed with its device', async () => {
        const t = clock.now();
        const r = request(clock, dev, { expiresAt: t + 100 });
        await store.createRequest(r, t);
        await store.decideRequest(r.id, 'approved', t + 50);
        const gone = device('dave');
        await store.putDevice(gone, false);
        await store.createRequest(request(clock, gone, { expiresAt: t + 100 }), t);
        await store.removeDevice('dave');
        clock.advance(1_000);
        assert.deepEqual(await store.expireRequests(clock.now(), 100, RETENTION), []);
      });
    });
  });
}
