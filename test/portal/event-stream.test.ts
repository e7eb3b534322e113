import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { PortalServer } from '../../src/portal/portal-server.js';
import { bind, call, fixture, open, plainPortal, REQUEST_TTL_MS, SseClient, waitFor, type Fixture, type Target } from './portal-kit.js';
import { coreFixture } from '../core/core-fixture.js';

/** The event stream's ids, Last-Event-ID resumption, resets and expiry, on a plain-HTTP portal. */
describe('device event stream', () => {
  let f: Fixture;
  let portal: PortalServer;
  let target: Target;
  let stopSweep: (() => void) | undefined;

  before(async () => {
    f = fixture();
    portal = plainPortal(f, { heartbeatMs: 50 });
    target = { port: (await portal.listen()).port };
    // As main.ts runs it beside the portal: the portal itself sweeps nothing.
    stopSweep = f.requests.startExpirySweeper();
  });

  after(async () => {
    stopSweep?.();
    await portal?.close();
    await f?.store.close();
  });

  test('events: a reconnect with Last-Event-ID gets exactly what it missed, in order, then the live events', async () => {
    const frank = await bind(f, 'frank');
    const sse = await SseClient.open(target, frank.token);
    await waitFor('the stream to start', () => sse.retry !== undefined);
    const a = await open(f, frank.device, '10.3.0.1');
    await waitFor('request a', () => sse.events.find((e) => e.data.includes(a.id)));
    const seen = sse.lastEventId;
    assert.ok(seen !== undefined);
    sse.close();

    // While the phone is away: a is approved, b opened, c opened and denied.
    await f.requests.decide(frank.device.deviceId, a.id, 'approve');
    const b = await open(f, frank.device, '10.3.0.2');
    const c = await open(f, frank.device, '10.3.0.3');
    await f.requests.decide(frank.device.deviceId, c.id, 'deny');

    const again = await SseClient.open(target, frank.token, { lastEventId: seen });
    await waitFor('the missed events', () => again.events.length >= 4);
    const shape = again.events.map((e) => [e.event, (JSON.parse(e.data) as { id: string; status?: string }).id, (JSON.parse(e.data) as { status?: string }).status]);
    assert.deepEqual(shape, [
      ['settled', a.id, 'approved'],
      ['request', b.id, undefined],
      ['request', c.id, undefined],
      ['settled', c.id, 'denied'],
    ]);
    const ids = again.events.map((e) => Number(e.id));
    assert.ok(ids.every((id, i) => id > Number(seen) && (i === 0 || id > (ids[i - 1] ?? 0))), `ids in order: ${ids.join(',')}`);

    await f.requests.decide(frank.device.deviceId, b.id, 'deny');
    await waitFor('the live settle', () => again.events.length === 5);
    assert.deepEqual(JSON.parse(again.events[4]?.data ?? ''), { id: b.id, status: 'denied' });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(again.events.length, 5, 'nothing twice');

    // The same through the query parameter, for clients that cannot set the header.
    const viaQuery = await SseClient.open(target, frank.token, { query: `?lastEventId=${seen}` });
    await waitFor('the replay', () => viaQuery.events.length >= 5);
    assert.deepEqual(viaQuery.events.map((e) => e.id), again.events.map((e) => e.id));
    again.close();
    viaQuery.close();
  });

  test('events: a notice (a recovery code was used) reaches its device live and on a resume, and no other device', async () => {
    const ivy = await bind(f, 'ivy');
    const jon = await bind(f, 'jon');
    const sse = await SseClient.open(target, ivy.token);
    const other = await SseClient.open(target, jon.token);
    await waitFor('the streams to start', () => sse.retry !== undefined && other.retry !== undefined);
    const at = f.clock.now();
    await f.requests.logNotice(ivy.device.deviceId, { kind: 'recovery-code-used', user: 'ivy', left: 9, at });
    await waitFor('the live notice', () => sse.events.find((e) => e.event === 'notice'));
    const live = sse.events.find((e) => e.event === 'notice');
    assert.deepEqual(JSON.parse(live?.data ?? ''), { kind: 'recovery-code-used', user: 'ivy', left: 9, at: new Date(at).toISOString() });
    const before = sse.lastEventId;
    sse.close();

    await f.requests.logNotice(ivy.device.deviceId, { kind: 'recovery-code-used', user: 'ivy', left: 8, at });
    const again = await SseClient.open(target, ivy.token, { lastEventId: before });
    await waitFor('the missed notice', () => again.events.find((e) => e.event === 'notice'));
    assert.deepEqual(again.events.map((e) => [e.event, (JSON.parse(e.data) as { left?: number }).left]), [['notice', 8]]);
    // jon's stream got nothing of ivy's (a request of his own shows it is live).
    const r = await open(f, jon.device, '10.3.9.1');
    await waitFor('jon\'s request', () => other.events.find((e) => e.data.includes(r.id)));
    assert.deepEqual(other.events.map((e) => e.event), ['request']);
    again.close();
    other.close();
  });

  test('events: a Last-Event-ID from before what the logs keep starts over with a reset and the pending list', async () => {
    const gina = await bind(f, 'gina');
    const old = await open(f, gina.device, '10.4.0.1');
    const [logged] = (await f.store.readEvents(gina.device.deviceId, 0, f.clock.now(), f.requests.eventRetentionMs)).events;
    assert.ok(logged);
    f.clock.advance(f.requests.eventRetentionMs + 1);
    const now = await open(f, gina.device, '10.4.0.2');
    const sse = await SseClient.open(target, gina.token, { lastEventId: String(logged.eventId - 1) });
    await waitFor('the reset and the list', () => sse.events.length >= 2);
    assert.equal(sse.events[0]?.event, 'reset');
    assert.deepEqual(JSON.parse(sse.events[0]?.data ?? ''), {});
    assert.equal(sse.events[1]?.event, 'request');
    assert.equal((JSON.parse(sse.events[1]?.data ?? '') as { id: string }).id, now.id);
    assert.ok(!sse.events.some((e) => e.event === 'request' && e.data.includes(old.id)), 'the expired one is not listed');
    sse.close();
  });

  test('a cleared device loses its open stream at the next heartbeat; a reconnect gets 401', async () => {
    const hana = await bind(f, 'hana');
    const sse = await SseClient.open(target, hana.token);
    await waitFor('the stream to start', () => sse.retry !== undefined);
    await waitFor('a heartbeat', () => sse.comments.length > 0);
    assert.equal(sse.ended, false, 'a bound device keeps its stream across heartbeats');
    await f.devices.remove('hana');
    await waitFor('the stream to end', () => sse.ended);
    const again = await SseClient.open(target, hana.token);
    assert.equal(again.res.statusCode, 401);
    again.close();
  });

  test('events: a request that expires unanswered is settled as expired, once', async () => {
    const hank = await bind(f, 'hank');
    const sse = await SseClient.open(target, hank.token);
    await waitFor('the stream to start', () => sse.retry !== undefined);
    const r = await open(f, hank.device, '10.5.0.1');
    await waitFor('the request', () => sse.events.find((e) => e.data.includes(r.id)));
    f.clock.advance(REQUEST_TTL_MS);
    // The running sweep may get there first; either way it is announced once.
    await Promise.all([f.requests.sweepExpired(), f.requests.sweepExpired()]);
    const settled = await waitFor('the expiry', () => sse.events.find((e) => e.event === 'settled'));
    assert.deepEqual(JSON.parse(settled.data), { id: r.id, status: 'expired' });
    // A few rounds of the sweep (every 50 ms of the core's fake clock here) later, still once.
    for (let i = 0; i < 5; i++) {
      f.clock.advance(50);
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(sse.events.filter((e) => e.event === 'settled').length, 1);
    const late = await call(target, 'POST', `/api/v1/device/requests/${r.id}`, { token: hank.token, body: { decision: 'approve' } });
    assert.equal(late.status, 404);
    sse.close();
  });

  test('a request opened between the log position and the pending list is sent once, and the id moves past it', async () => {
    const f = fixture();
    const ivan = await bind(f, 'ivan');
    let raced: RequestRecord | undefined;
    // The list is read right after the position; a login opening a request in between is the race.
    const racing = new Proxy(f.store, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop === 'listPendingRequests' && !raced) {
          return async (...args: unknown[]) => {
            raced = await open(f, ivan.device, '10.6.0.1');
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const { requests } = coreFixture({ store: racing, clock: f.clock });
    const portal = new PortalServer({
      settings: { host: '127.0.0.1', port: 0, tls: false, enabled: true },
      tls: null,
      devices: f.devices,
      requests,
      approvals: f.approvals,
      ping: () => racing.ping(),
      logger: silentLogger(),
    });
    try {
      const target = { port: (await portal.listen()).port };
      const head = await f.store.lastEventId();
      const sse = await SseClient.open(target, ivan.token);
      await waitFor('the snapshot', () => sse.events.length >= 1);
      assert.ok(raced);
      const logged = (await f.store.readEvents(ivan.device.deviceId, head, f.clock.now(), requests.eventRetentionMs)).events;
      assert.equal(logged.length, 1);
      await waitFor('the id to move past the opened event', () => sse.lastEventId === String(logged[0]?.eventId));
      assert.equal(sse.events.length, 1, 'the request is not sent twice');
      assert.equal(sse.events[0]?.id, String(head));
      sse.close();
    } finally {
      await portal.close();
      await f.store.close();
    }
  });
});
