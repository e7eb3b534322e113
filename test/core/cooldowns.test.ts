import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { coreFixture, eventually, withDevice, type CoreFixture, type TestSession } from './core-fixture.js';
import type { LoginResult } from '../../src/core/login-types.js';
import { Cooldowns } from '../../src/core/cooldowns.js';
import { interleave } from '../helpers/interleaving-store.js';

const MINUTE = 60_000;
let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** A login that opens a request, answered by the device with `decision`. */
async function answered(f: CoreFixture, deviceId: string, user: string, ip: string, decision: 'deny' | 'report') {
  const pending = f.authorizer.authorize(f.attempt(user, 'right', ip));
  const req = await eventually(async () => (await f.requests.listPending(deviceId)).find((r) => r.clientIp === ip));
  const d = await f.requests.decide(deviceId, req.id, decision);
  assert.equal(d.status, 'denied');
  const r = await pending;
  assert.equal(r.kind, 'denied');
  return req;
}

describe('push fatigue: cool-down after a deny', () => {
  it('refuses the same user and address at once for denyCooldown, with no new push; other addresses still ask', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    await answered(fx, deviceId, 'alice', '10.0.0.1', 'deny');
    assert.equal(fx.notifier.opened.length, 1);

    // Retry, under another spelling too: refused at once, no request, no push.
    for (const spelling of ['alice', 'ALICE']) {
      const a = fx.attempt(spelling, 'right', '10.0.0.1');
      const r: LoginResult<TestSession> = await fx.timeOut(fx.authorizer.authorize(a));
      assert.equal(r.kind, 'denied');
      assert.equal(r.kind === 'denied' && r.cooldown, 'deny');
      assert.equal(a.session.closed, 1, 'the upstream session is closed');
    }
    assert.equal(fx.notifier.opened.length, 1);
    // A wrong password stays a wrong password.
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'wrong', '10.0.0.1')))).kind, 'bad-password');

    // Another address is not affected.
    const other = fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.2'));
    const req2 = await eventually(async () => (await fx!.requests.listPending(deviceId)).find((r) => r.clientIp === '10.0.0.2'));
    await fx.requests.decide(deviceId, req2.id, 'approve');
    assert.equal((await other).kind, 'approved');

    // After the cool-down the address may ask again.
    fx.clock.advance(15 * MINUTE + 1);
    const again = fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.1'));
    const req3 = await eventually(async () => (await fx!.requests.listPending(deviceId)).find((r) => r.clientIp === '10.0.0.1'));
    await fx.requests.decide(deviceId, req3.id, 'approve');
    assert.equal((await again).kind, 'approved');
  });

  it('"this wasn\'t me" denies, revokes that address\'s approvals, lasts reportCooldown and is logged as reported', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    const cursor = await fx.requests.eventCursor();
    const pending = fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.1'));
    const req = await eventually(async () => (await fx!.requests.listPending(deviceId))[0]);
    // A window for that address from before (another protocol's tap) ends with the report.
    await fx.approvals.grant({ ...req, id: 'earlier' });
    assert.equal((await fx.requests.decide(deviceId, req.id, 'report')).status, 'denied');
    assert.equal((await pending).kind, 'denied');
    assert.equal(await fx.approvals.find('alice', '10.0.0.1'), null);

    const events = await fx.requests.eventsSince(deviceId, cursor);
    assert.deepEqual(
      events.events.map((e) => e.type),
      ['request.opened', 'request.reported'],
    );
    const reported = events.events[1];
    assert.ok(reported && reported.type === 'request.reported');
    assert.equal(reported.request.id, req.id);
    assert.equal(reported.request.status, 'denied');

    fx.clock.advance(16 * MINUTE);
    const r: LoginResult<TestSession> = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.1')));
    assert.equal(r.kind === 'denied' && r.cooldown, 'report');
    fx.clock.advance(24 * 60 * MINUTE);
    assert.equal(await fx.cooldowns.active('alice', '10.0.0.1'), null);
  });

  it('a later deny never shortens a report', async () => {
    fx = coreFixture();
    await fx.cooldowns.start('alice', '10.0.0.1', 'report');
    await fx.cooldowns.start('alice', '10.0.0.1', 'deny');
    fx.clock.advance(60 * MINUTE);
    assert.equal((await fx.cooldowns.active('alice', '10.0.0.1'))?.kind, 'report');
  });

  it('a deny landing while a report is written (on another instance) never overwrites it', async () => {
    fx = coreFixture();
    const f = fx;
    await f.cooldowns.start('alice', '10.0.0.2', 'deny');
    const key = `cooldown:alice:10.0.0.2`;
    // The second deny has read the first deny's cool-down when the report lands, before it writes.
    const racing = new Cooldowns(interleave(f.store, key, () => f.cooldowns.start('alice', '10.0.0.2', 'report'), 'after-read'), f.clock, { denyMs: 15 * MINUTE, reportMs: 24 * 60 * MINUTE });
    await racing.start('alice', '10.0.0.2', 'deny');
    f.clock.advance(60 * MINUTE);
    assert.equal((await f.cooldowns.active('alice', '10.0.0.2'))?.kind, 'report');
  });

  it('denyCooldown 0 turns the cool-down off', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 }, cooldowns: { denyMs: 0 } });
    const deviceId = await withDevice(fx);
    await answered(fx, deviceId, 'alice', '10.0.0.1', 'deny');
    assert.equal(await fx.cooldowns.active('alice', '10.0.0.1'), null);
  });
});

describe('client names shown to the phone', () => {
  it('are cleaned once, when the request is created, for every channel alike', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 50 } });
    const deviceId = await withDevice(fx);
    const hostile = 'Thunder\u0007bird\u202e\u2066 moc.evil\u200b\u00ad' + 'x'.repeat(200);
    await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.1', { clientName: hostile })));
    const [req] = await fx.requests.listPending(deviceId);
    const name = req?.clientName ?? '';
    assert.equal(name, ('Thunderbird moc.evil' + 'x'.repeat(200)).slice(0, 64));
    assert.equal(fx.notifier.opened[0]?.clientName, name);
    // A name that is nothing but hidden characters is no name.
    await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.2', { clientName: '\u202e\u200b\u0000' })));
    const second = (await fx.requests.listPending(deviceId)).find((r) => r.clientIp === '10.0.0.2');
    assert.equal(second?.clientName, undefined);
  });
});
