import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { coreFixture, eventually, turns, withDevice, type CoreFixture } from './core-fixture.js';
import type { Store } from '../../src/core/ports/store.js';
import { MailotpError } from '../../src/core/errors.js';

const HOUR = 3_600_000;
let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** The pending request addressed to the device, once it exists. */
function pendingFor(f: CoreFixture, deviceId: string) {
  return eventually(async () => (await f.requests.listPending(deviceId))[0]);
}

describe('LoginAuthorizer', () => {
  it('lets a user with the switch off in after the upstream accepted the password', async () => {
    fx = coreFixture();
    const a = fx.attempt('alice', 'right');
    const r = await fx.timeOut(fx.authorizer.authorize(a));
    assert.equal(r.kind, 'approved');
    assert.equal(r.kind === 'approved' && r.reason, 'not-required');
    assert.equal(a.session.closed, 0);
  });

  it('answers a wrong password with the upstream refusal and opens no request', async () => {
    fx = coreFixture();
    const deviceId = await withDevice(fx);
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'wrong')));
    assert.deepEqual(r, { kind: 'bad-password', reply: '[AUTHENTICATIONFAILED] Authentication failed.' });
    assert.deepEqual(await fx.requests.listPending(deviceId), []);
    assert.equal(fx.notifier.opened.length, 0);
  });

  it('holds the login until the device approves, then opens a 24 h window for that IP', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    let held = 0;
    const a = fx.attempt('alice', 'right', '127.0.0.2', { onHold: () => held++ });
    const pending = fx.authorizer.authorize(a);
    const req = await pendingFor(fx, deviceId);
    assert.equal(req.user, 'alice');
    assert.equal(req.clientIp, '127.0.0.2');
    assert.equal(req.protocol, 'imap');
    assert.equal(held, 1);
    assert.equal(fx.notifier.opened.length, 1);
    const d = await fx.requests.decide(deviceId, req.id, 'approve');
    assert.equal(d.status, 'approved');
    const r = await pending;
    assert.equal(r.kind, 'approved');
    assert.equal(r.kind === 'approved' && r.reason, 'tap');
    assert.equal(a.session.closed, 0);

    const again = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2')));
    assert.equal(again.kind === 'approved' && again.reason, 'approval');
    const [approval] = await fx.approvals.list('alice');
    assert.equal(approval?.expiresAt, fx.clock.now() + 24 * HOUR);

    fx.clock.advance(24 * HOUR + 1);
    const after = fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2'));
    const second = await pendingFor(fx, deviceId);
    assert.notEqual(second.id, req.id, 'an expired window asks again');
    await fx.requests.decide(deviceId, second.id, 'deny');
    assert.equal((await after).kind, 'denied');
  });

  it('binds the approval to the client IP (client-ip) or to the user (user)', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 100 } });
    const deviceId = await withDevice(fx);
    const p = fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2'));
    await fx.requests.decide(deviceId, (await pendingFor(fx, deviceId)).id, 'approve');
    assert.equal((await p).kind, 'approved');
    const other = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.3')));
    assert.equal(other.kind, 'pending-timeout');
    await fx.close();

    fx = coreFixture({ daemon: { holdTimeMs: 100 }, bindTo: 'user' });
    const id2 = await withDevice(fx);
    const p2 = fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2'));
    await fx.requests.decide(id2, (await pendingFor(fx, id2)).id, 'approve');
    assert.equal((await p2).kind, 'approved');
    const other2 = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.3')));
    assert.equal(other2.kind === 'approved' && other2.reason, 'approval');
  });

  it('times out with the request still answerable; a late tap lets the retry in at once', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 150 } });
    const deviceId = await withDevice(fx);
    const a = fx.attempt('alice', 'right');
    const r = await fx.timeOut(fx.authorizer.authorize(a));
    assert.equal(r.kind, 'pending-timeout');
    assert.equal(a.session.closed, 1, 'the held upstream session is closed');
    fx.clock.advance(4 * 60_000); // within the 5 minutes
    const [req] = await fx.requests.listPending(deviceId);
    assert.ok(req);
    assert.equal((await fx.requests.decide(deviceId, req.id, 'approve')).status, 'approved');
    const retry = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')));
    assert.equal(retry.kind === 'approved' && retry.reason, 'approval');
  });

  it('expires a request after 5 minutes: a tap then is refused and the next login asks again', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 50 } });
    const deviceId = await withDevice(fx);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')))).kind, 'pending-timeout');
    const [req] = await fx.requests.listPending(deviceId);
    assert.ok(req);
    fx.clock.advance(5 * 60_000 + 1);
    assert.equal((await fx.requests.decide(deviceId, req.id, 'approve')).status, 'not-found');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')))).kind, 'pending-timeout');
    assert.equal(fx.notifier.opened.length, 2);
  });

  it('parallel logins of one client share one request and one tap releases them all', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    const logins = Array.from({ length: 5 }, () => fx!.authorizer.authorize(fx!.attempt('alice', 'right', '127.0.0.4')));
    const req = await pendingFor(fx, deviceId);
    await eventually(async () => fx!.notifier.opened.length === 1);
    await turns();
    assert.equal((await fx.requests.listPending(deviceId)).length, 1);
    await fx.requests.decide(deviceId, req.id, 'approve');
    const results = await Promise.all(logins);
    assert.deepEqual(results.map((r) => r.kind), ['approved', 'approved', 'approved', 'approved', 'approved']);
    assert.equal(fx.notifier.opened.length, 1, 'one push for five logins');
  });

  it('deny refuses the held login, closes the upstream session and answers 409 to a second decision', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    const a = fx.attempt('alice', 'right');
    const p = fx.authorizer.authorize(a);
    const req = await pendingFor(fx, deviceId);
    assert.equal((await fx.requests.decide(deviceId, req.id, 'deny')).status, 'denied');
    assert.equal((await p).kind, 'denied');
    assert.equal(a.session.closed, 1);
    assert.equal((await fx.requests.decide(deviceId, req.id, 'approve')).status, 'already-decided');
    assert.deepEqual(await fx.approvals.list('alice'), []);
    await eventually(async () => fx!.notifier.settled.length === 1);
  });

  it('refuses a device that is not the one the request was addressed to', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 100 } });
    const deviceId = await withDevice(fx, 'alice');
    const bobDevice = await withDevice(fx, 'bob');
    void fx.authorizer.authorize(fx.attempt('alice', 'right'));
    const req = await pendingFor(fx, deviceId);
    assert.equal((await fx.requests.decide(bobDevice, req.id, 'approve')).status, 'not-found');
  });

  it('refuses a user who must use two-factor but has no device', async () => {
    fx = coreFixture();
    await fx.store.setDaemonOtp('alice', true, fx.clock.now());
    const a = fx.attempt('alice', 'right');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(a))).kind, 'no-device');
    assert.equal(a.session.closed, 1);
  });

  it('applies enforce: bound and all, and enabled: false', async () => {
    fx = coreFixture({ daemon: { enforce: 'bound', holdTimeMs: 50 } });
    await fx.devices.bind('alice', 'Phone', false);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')))).kind, 'pending-timeout', 'bound device, switch off');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('bob', 'right')))).kind, 'approved', 'no device, switch off');
    await fx.close();

    fx = coreFixture({ daemon: { enforce: 'all', holdTimeMs: 50 } });
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('bob', 'right')))).kind, 'no-device');
    await fx.close();

    fx = coreFixture({ daemon: { enabled: false } });
    await withDevice(fx);
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')));
    assert.equal(r.kind === 'approved' && r.reason, 'disabled');
  });

  it('counts failed logins per user (unknown users too) and per IP; a success takes only its own place back', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 3, failedLoginsPerIp: 5 } });
    for (let i = 0; i < 3; i++) assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('nobody', 'wrong', '127.0.0.9')))).kind, 'bad-password');
    const blocked = fx.attempt('nobody', 'right', '127.0.0.10');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(blocked)), { kind: 'rate-limited', limit: 'user' });
    assert.equal(blocked.verifyCalls(), 0, 'a blocked login never reaches the upstream');

    for (let i = 0; i < 2; i++) await fx.timeOut(fx.authorizer.authorize(fx.attempt(`u${i}`, 'wrong', '127.0.0.9')));
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('carol', 'right', '127.0.0.9'))), { kind: 'rate-limited', limit: 'ip' });

    for (let i = 0; i < 2; i++) await fx.timeOut(fx.authorizer.authorize(fx.attempt('dave', 'wrong', '127.0.0.20')));
    for (let i = 0; i < 5; i++) assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('dave', 'right', '127.0.0.21')))).kind, 'approved');
    // The successes did not clear dave's failures (that would hand a guesser fresh tries each time
    // the real user's client logs in): one more failure reaches the cap for unknown addresses.
    await fx.timeOut(fx.authorizer.authorize(fx.attempt('dave', 'wrong', '127.0.0.22')));
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('dave', 'right', '127.0.0.23'))), { kind: 'rate-limited', limit: 'user' });
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('dave', 'right', '127.0.0.21')))).kind, 'approved', 'the address that logged in is known');

    fx.clock.advance(15 * 60_000);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('nobody', 'right', '127.0.0.10')))).kind, 'approved', 'the window ran out');
  });

  it('caps pushes per user per hour', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 20 }, limits: { pushesPerUserPerHour: 2 } });
    await withDevice(fx);
    for (let i = 0; i < 2; i++) assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', `127.0.1.${i}`)))).kind, 'pending-timeout');
    const a = fx.attempt('alice', 'right', '127.0.1.9');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(a)), { kind: 'rate-limited', limit: 'push' });
    assert.equal(a.session.closed, 1);
    assert.equal(fx.notifier.opened.length, 2);
    fx.clock.advance(HOUR);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.1.9')))).kind, 'pending-timeout');
  });

  it('at the push cap, a retry from the same address joins the pending request and a tap lets it in', async () => {
    // Issue 8: pushesPerUserPerHour: 1; the first login times out, the second from the same address
    // must wait on the same request (no push), not be refused as "too many attempts".
    fx = coreFixture({ daemon: { holdTimeMs: 400 }, limits: { pushesPerUserPerHour: 1 } });
    const deviceId = await withDevice(fx);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.2.1')))).kind, 'pending-timeout');
    const [first] = await fx.requests.listPending(deviceId);
    assert.ok(first);
    let held = false;
    const retry = fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.2.1', { onHold: () => (held = true) }));
    await eventually(async () => held);
    assert.equal((await fx.requests.decide(deviceId, first.id, 'approve')).status, 'approved');
    const r = await retry;
    assert.equal(r.kind === 'approved' && r.reason, 'tap');
    assert.equal(fx.notifier.opened.length, 1, 'joining pushed nothing');
    // Getting in through the approval counted nothing either; another address is a new push, capped.
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.2.1')))).kind, 'approved');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.2.2'))), { kind: 'rate-limited', limit: 'push' });
  });

  it('does not hold again on a connection where a hold timed out: answers at once, lets in after a tap, refuses after a deny', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 60_000, holdTimesMs: { imap: 150 } } });
    const deviceId = await withDevice(fx);
    const first = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')));
    assert.equal(first.kind, 'pending-timeout');
    const timedOut = first.kind === 'pending-timeout' ? [first.requestId] : [];
    // NeoMutt's next mechanism on the same connection: checked upstream, answered without a hold.
    let held = 0;
    const again = fx.attempt('alice', 'right', '127.0.0.2', { timedOut, onHold: () => held++ });
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(again)), first);
    assert.equal(again.verifyCalls(), 1, 'the password is still checked');
    assert.equal(again.session.closed, 1);
    assert.equal(held, 0);
    const wrong = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'wrong', '127.0.0.2', { timedOut })));
    assert.equal(wrong.kind, 'bad-password');
    // Another user (or another connection) is held as usual.
    await withDevice(fx, 'bob');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('bob', 'right', '127.0.0.2', { timedOut, onHold: () => held++ })))).kind, 'pending-timeout');
    assert.equal(held, 1);
    // Approved meanwhile: in.
    const [req] = (await fx.requests.listPending(deviceId)).filter((r) => r.user === 'alice');
    assert.ok(req);
    await fx.requests.decide(deviceId, req.id, 'approve');
    const after = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2', { timedOut })));
    assert.equal(after.kind === 'approved' && after.reason, 'approval');
    assert.equal(fx.notifier.opened.length, 2, 'no push for the retries');
  });

  it('refuses a retry on the connection at once once its timed-out request was denied', async () => {
    // With the deny cool-down off, so that the connection's own memory of the hold is what answers.
    fx = coreFixture({ daemon: { holdTimeMs: 150 }, cooldowns: { denyMs: 0 } });
    const deviceId = await withDevice(fx);
    const first = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')));
    assert.equal(first.kind, 'pending-timeout');
    const timedOut = first.kind === 'pending-timeout' ? [first.requestId] : [];
    const [req] = await fx.requests.listPending(deviceId);
    assert.ok(req);
    await fx.requests.decide(deviceId, req.id, 'deny');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2', { timedOut }))), { kind: 'denied', requestId: req.id });
    assert.equal(fx.notifier.opened.length, 1, 'a deny is not answered with a new push');
  });

  it('ends the wait when the client goes away', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    const ac = new AbortController();
    const a = fx.attempt('alice', 'right', '127.0.0.2', { signal: ac.signal });
    const p = fx.authorizer.authorize(a);
    await pendingFor(fx, deviceId);
    ac.abort();
    assert.equal((await p).kind, 'aborted');
    assert.equal(a.session.closed, 1);
  });

  it('fails closed when the store cannot be reached', async () => {
    const real = coreFixture();
    await withDevice(real);
    let broken = false;
    const failing = new Proxy(real.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (broken && prop !== 'subscribe' && prop !== 'close') return Promise.reject(new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', 'down'));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Store;
    fx = coreFixture({ store: failing });
    broken = true;
    const a = fx.attempt('alice', 'right');
    const r = await fx.timeOut(fx.authorizer.authorize(a));
    assert.equal(r.kind, 'unavailable');
    broken = false;
    // Fails closed after the password was checked, too: the switch lookup fails.
    const original = real.store.getUser.bind(real.store);
    real.store.getUser = () => Promise.reject(new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', 'down'));
    const b = fx.attempt('alice', 'right');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(b))).kind, 'unavailable');
    assert.equal(b.session.closed, 1);
    real.store.getUser = original;
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')))).kind, 'pending-timeout', 'recovers without restart');
  });

  it('treats an upstream that cannot be reached as unavailable, and a throwing verify too', async () => {
    fx = coreFixture();
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2', { verify: async () => ({ kind: 'unavailable', reason: 'ECONNREFUSED' }) })));
    assert.equal(r.kind, 'unavailable');
    const t = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '127.0.0.2', { verify: async () => { throw new Error('boom'); } })));
    assert.equal(t.kind, 'unavailable');
  });
});
