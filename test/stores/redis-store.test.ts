import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import type { PublishedEvent, RequestRecord, StoreEvent } from '../../src/core/types.js';
import { createStore } from '../../src/stores/create-store.js';
import { RedisStore } from '../../src/stores/redis-store.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { auditLogContract } from './audit-log-contract.js';
import { eventLogContract } from './event-log-contract.js';
import { assertUnavailable, publishUntil, storeContract } from './store-contract.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let prefixSeq = 0;
/** Every store gets its own key space, so tests sharing one server never see each other's keys. */
function uniquePrefix(): string {
  prefixSeq += 1;
  return `mailotp-test-${process.pid}-${prefixSeq}:`;
}

function req(clock: FakeClock, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id: `r-${Math.random().toString(36).slice(2)}`,
    type: 'login',
    user: 'alice',
    deviceId: 'd1',
    protocol: 'imap',
    clientIp: '10.0.0.1',
    createdAt: clock.now(),
    expiresAt: clock.now() + 60_000,
    status: 'pending',
    ...over,
  };
}

let server: RedisServerHandle;
before(async () => {
  server = await startRedisServer();
});
after(async () => {
  await server.stop();
});

storeContract('redis', async () => {
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  return { store, cleanup: () => store.close() };
});

auditLogContract('redis', async () => {
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  return { store, cleanup: () => store.close() };
});

eventLogContract('redis', async () => {
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  return { store, cleanup: () => store.close() };
});

describe('RedisStore across instances', () => {
  const open: RedisStore[] = [];
  const pair = (): [RedisStore, RedisStore] => {
    const prefix = uniquePrefix();
    const a = new RedisStore({ url: server.url, keyPrefix: prefix });
    const b = new RedisStore({ url: server.url, keyPrefix: prefix });
    open.push(a, b);
    return [a, b];
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  it('delivers events published by one instance to subscribers of another', async () => {
    const [a, b] = pair();
    const gotA: PublishedEvent[] = [];
    const gotB: PublishedEvent[] = [];
    a.subscribe((e) => gotA.push(e));
    b.subscribe((e) => gotB.push(e));
    const ev: StoreEvent = { type: 'request.opened', request: req(new FakeClock()) };
    await publishUntil(b, () => ev, () => gotA.length > 0 && gotB.length > 0);
    assert.deepEqual(gotA[0], ev);
    assert.deepEqual(gotB[0], ev);
  });

  it('does not deliver events across key prefixes', async () => {
    const [a] = pair();
    const [other] = pair();
    const gotA: PublishedEvent[] = [];
    const gotOther: PublishedEvent[] = [];
    a.subscribe((e) => gotA.push(e));
    other.subscribe((e) => gotOther.push(e));
    const ev: StoreEvent = { type: 'request.opened', request: req(new FakeClock()) };
    // Both subscriptions are live once each has received its own event.
    await publishUntil(other, () => ev, () => gotOther.length > 0);
    const before = gotOther.length;
    await publishUntil(a, () => ev, () => gotA.length > 0);
    await sleep(20);
    assert.equal(gotOther.length, before);
  });

  it('keeps createRequest and decideRequest atomic across instances', async () => {
    const [a, b] = pair();
    const clock = new FakeClock();
    const rs = Array.from({ length: 10 }, () => req(clock));
    const created = await Promise.all(rs.map((r, i) => (i % 2 ? a : b).createRequest(r, clock.now())));
    assert.equal(created.filter((x) => x.created).length, 1);
    const id = created.find((x) => x.created)?.request.id;
    assert.ok(id !== undefined);
    const decided = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).decideRequest(id, 'approved', clock.now())),
    );
    assert.equal(decided.filter((x) => x.status === 'ok').length, 1);
    assert.equal(decided.filter((x) => x.status === 'already-decided').length, 9);
  });

  it('orders event ids across instances and lets each read what the other logged', async () => {
    const [a, b] = pair();
    const clock = new FakeClock();
    const r = req(clock);
    const appended = [];
    for (let i = 0; i < 6; i++) {
      const store = i % 2 ? a : b;
      appended.push(await store.appendEvent({ type: 'request.opened', request: { ...r, id: `${r.id}-${i}` } }, clock.now(), 60_000));
    }
    const got = appended.map((e) => e.eventId);
    assert.deepEqual(got, [...got].sort((x, y) => x - y));
    assert.equal(new Set(got).size, 6);
    assert.deepEqual((await a.readEvents(r.deviceId, 0, clock.now(), 60_000)).events, appended);
    assert.equal(await b.lastEventId(), got.at(-1));
  });

  it('expires each request exactly once when every instance sweeps at the same time', async () => {
    const [a, b] = pair();
    const clock = new FakeClock();
    const rs = Array.from({ length: 8 }, (_, i) => req(clock, { clientIp: `10.1.0.${i}`, expiresAt: clock.now() + 50 }));
    for (const r of rs) await a.createRequest(r, clock.now());
    clock.advance(50);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).expireRequests(clock.now(), 3, 60_000)));
    const more = [...(await a.expireRequests(clock.now(), 100, 60_000)), ...(await b.expireRequests(clock.now(), 100, 60_000))];
    const claimed = [...results.flat(), ...more].map((e) => e.request.id);
    assert.deepEqual([...claimed].sort(), rs.map((r) => r.id).sort());
  });

  it('is what createStore builds for the redis driver', async () => {
    const store = await createStore({ driver: 'redis', url: server.url, keyPrefix: uniquePrefix() });
    try {
      assert.ok(store instanceof RedisStore);
      // Usable right away: the first call waits for the first connection.
      await store.setDaemonOtp('alice', true, 1);
      assert.deepEqual(await store.getUser('alice'), { user: 'alice', daemonOtp: true, updatedAt: 1 });
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore when Redis goes away', () => {
  let own: RedisServerHandle;
  const open: RedisStore[] = [];
  before(async () => {
    own = await startRedisServer();
  });
  after(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await own.stop();
  });

  /** Polls ping: the same instance must come back by itself, within a few seconds. */
  async function reconnected(store: RedisStore): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        await store.ping();
        return;
      } catch {
        assert.ok(Date.now() < deadline, 'the store did not reconnect within 5 s');
        await sleep(50);
      }
    }
  }

  async function timed(p: Promise<unknown>): Promise<number> {
    const t0 = Date.now();
    await assertUnavailable(p);
    return Date.now() - t0;
  }

  it('fails fast with STORE_UNAVAILABLE while down and recovers by itself', async () => {
    const errors: Error[] = [];
    const prefix = uniquePrefix();
    const store = new RedisStore({ url: own.url, keyPrefix: prefix, onError: (e) => errors.push(e) });
    const publisher = new RedisStore({ url: own.url, keyPrefix: prefix, onError: (e) => errors.push(e) });
    open.push(store, publisher);
    const clock = new FakeClock();
    const got: PublishedEvent[] = [];
    store.subscribe((e) => got.push(e));
    const ev = (): StoreEvent => ({ type: 'request.opened', request: req(clock) });
    await publishUntil(publisher, ev, () => got.length > 0);

    await own.stop();
    const calls: Promise<unknown>[] = [
      store.ping(),
      store.getUser('alice'),
      store.setDaemonOtp('alice', true, clock.now()),
      store.hit('k', 60_000, clock.now()),
      store.createRequest(req(clock), clock.now()),
      store.decideRequest('r', 'approved', clock.now()),
      store.listApprovals(null, clock.now()),
      store.putDevice({ deviceId: 'd', user: 'alice', name: 'n', tokenHash: 'h', createdAt: 1 }, true),
      store.publish(ev()),
    ];
    for (const p of calls) assert.ok((await timed(p)) < 3_000);
    // Reconnect attempts against the dead port report to onError rather than as unhandled 'error' events.
    const errDeadline = Date.now() + 3_000;
    while (errors.length === 0 && Date.now() < errDeadline) await sleep(20);
    assert.ok(errors.length > 0, 'connection errors reach onError');

    await own.restart();
    await Promise.all([reconnected(store), reconnected(publisher)]);
    await store.setDaemonOtp('alice', true, clock.now());
    assert.equal((await store.getUser('alice'))?.daemonOtp, true);

    // The subscription comes back with the connection.
    const before = got.length;
    await publishUntil(publisher, ev, () => got.length > before, 5_000);
  });

  it('times out on a hung server instead of waiting for it', async () => {
    const store = new RedisStore({ url: own.url, keyPrefix: uniquePrefix(), commandTimeoutMs: 300, onError: () => {} });
    open.push(store);
    await store.ping();
    own.pause();
    try {
      const ms = await timed(store.getUser('alice'));
      assert.ok(ms >= 250 && ms < 1_500, `took ${ms} ms`);
    } finally {
      own.resume();
    }
    await reconnected(store);
    await store.setDaemonOtp('alice', true, 1);
    assert.equal((await store.getUser('alice'))?.daemonOtp, true);
  });

  it('fails fast when Redis is not there at all', async () => {
    await own.stop();
    try {
      const store = new RedisStore({ url: own.url, keyPrefix: uniquePrefix(), onError: () => {} });
      open.push(store);
      assert.ok((await timed(store.ping())) < 3_000);
      assert.ok((await timed(store.getUser('alice'))) < 3_000);
    } finally {
      await own.restart();
    }
  });
});
