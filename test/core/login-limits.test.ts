import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { coreFixture, eventually, type CoreFixture, type TestSession } from './core-fixture.js';
import type { LoginAttempt, VerifyResult } from '../../src/core/login-types.js';
import { MailotpError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/ports/store.js';

const MIN = 60_000;
let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** An upstream that answers only when released, so that every attempt of a burst is in flight at once. */
function slowUpstream() {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reached = 0;
  return {
    reached: () => reached,
    open: () => open(),
    verify: (password: string, session: TestSession) => async (): Promise<VerifyResult<TestSession>> => {
      reached++;
      await gate;
      return password === 'right' ? { kind: 'ok', session } : { kind: 'bad-password' };
    },
  };
}

/** Sends n logins at once through a slow upstream; how many reached it and what each got. */
async function burst(f: CoreFixture, n: number, make: (i: number) => { user: string; password: string; ip: string }) {
  const up = slowUpstream();
  const results = Array.from({ length: n }, (_, i) => {
    const { user, password, ip } = make(i);
    const a: LoginAttempt<TestSession> & { session: TestSession } = f.attempt(user, password, ip);
    return f.authorizer.authorize({ ...a, verify: up.verify(password, a.session) });
  });
  // Every attempt has either reached the upstream or been refused before the upstream answers.
  const settled = new Set<number>();
  results.forEach((p, i) => void p.then(() => settled.add(i)));
  await eventually(async () => up.reached() + settled.size >= n);
  up.open();
  const kinds = (await Promise.all(results)).map((r) => (r.kind === 'rate-limited' ? `rate-limited:${r.limit}` : r.kind));
  return { reached: up.reached(), kinds };
}

function tally(kinds: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const k of kinds) t[k] = (t[k] ?? 0) + 1;
  return t;
}

async function approveAddress(f: CoreFixture, user: string, ip: string): Promise<void> {
  await f.approvals.grant({ id: `r-${ip}`, type: 'connection', user, deviceId: 'd', protocol: 'imap', clientIp: ip, createdAt: f.clock.now(), expiresAt: f.clock.now() + MIN, status: 'approved' });
}

describe('failed-login limits under concurrency', () => {
  it('300 wrong passwords at once for one user from one address: only the per-user cap reaches the upstream', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 10, failedLoginsPerIp: 30 } });
    const { reached, kinds } = await burst(fx, 300, () => ({ user: 'alice', password: 'wrong', ip: '198.51.100.1' }));
    assert.equal(reached, 10);
    const t = tally(kinds);
    assert.equal(t['bad-password'], 10);
    assert.equal((t['rate-limited:user'] ?? 0) + (t['rate-limited:ip'] ?? 0), 290);
  });

  it('300 at once from 300 addresses: still only the per-user cap', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 10, failedLoginsPerIp: 30 } });
    const { reached } = await burst(fx, 300, (i) => ({ user: 'alice', password: 'wrong', ip: `198.51.${i >> 8}.${i & 255}` }));
    assert.equal(reached, 10);
  });

  it('300 at once for 300 users from one address: only the per-IP cap', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 10, failedLoginsPerIp: 30 } });
    const { reached, kinds } = await burst(fx, 300, (i) => ({ user: `u${i}`, password: 'wrong', ip: '198.51.100.1' }));
    assert.equal(reached, 30);
    assert.deepEqual(tally(kinds), { 'bad-password': 30, 'rate-limited:ip': 270 });
  });

  it('correct passwords give their places back, so a busy address of good logins is not limited', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 3, failedLoginsPerIp: 5 } });
    // Attempts in flight hold places too (their password is not judged yet): a new address gets
    // the per-user cap of logins at once.
    const { kinds } = await burst(fx, 4, () => ({ user: 'alice', password: 'right', ip: '198.51.100.1' }));
    assert.deepEqual(tally(kinds), { approved: 3, 'rate-limited:user': 1 });
    for (let i = 0; i < 20; i++) assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '198.51.100.1')))).kind, 'approved');
  });

  it('an upstream that cannot answer gives the places back', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 2, failedLoginsPerIp: 2 } });
    const down = async (): Promise<VerifyResult<TestSession>> => ({ kind: 'unavailable', reason: 'ECONNREFUSED' });
    const throws = async (): Promise<VerifyResult<TestSession>> => {
      throw new Error('boom');
    };
    for (let i = 0; i < 5; i++) {
      assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'wrong', '198.51.100.1', { verify: i % 2 ? down : throws })))).kind, 'unavailable');
    }
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'wrong', '198.51.100.1')))).kind, 'bad-password');
  });

  it('fails closed, without asking the upstream, when the counters cannot be reached', async () => {
    const real = coreFixture();
    const failing = new Proxy(real.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'hit') return () => Promise.reject(new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', 'down'));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Store;
    fx = coreFixture({ store: failing });
    const a = fx.attempt('alice', 'right');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(a))).kind, 'unavailable');
    assert.equal(a.verifyCalls(), 0);
  });
});

describe('addresses known for the user', () => {
  const lockOut = async (f: CoreFixture) => {
    for (let i = 0; i < 10; i++) assert.equal((await f.timeOut(f.authorizer.authorize(f.attempt('alice', 'wrong', `203.0.113.${i}`)))).kind, 'bad-password');
  };

  it('an address holding an approval, or that logged in within the window, is not locked out by other addresses', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 10, failedLoginsPerIp: 30 } });
    await approveAddress(fx, 'alice', '192.0.2.1');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.2')))).kind, 'approved');
    await lockOut(fx);

    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.1')))).kind, 'approved', 'approved address');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.2')))).kind, 'approved', 'previously successful address');
    const unknown = fx.attempt('alice', 'right', '192.0.2.3');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(unknown)), { kind: 'rate-limited', limit: 'user' });
    assert.equal(unknown.verifyCalls(), 0);
    // Another user's approval, or alice's approval for another address, does not count.
    await approveAddress(fx, 'bob', '192.0.2.4');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.4'))), { kind: 'rate-limited', limit: 'user' });
  });

  it('with bindTo: user, only the address the approval was given to is known', async () => {
    fx = coreFixture({ bindTo: 'user', limits: { failedLoginsPerUser: 10 } });
    await approveAddress(fx, 'alice', '192.0.2.1');
    await lockOut(fx);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.1')))).kind, 'approved');
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.9'))), { kind: 'rate-limited', limit: 'user' });
  });

  it('a successful login is remembered for one window only; the per-IP cap still applies to known addresses', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 10, failedLoginsPerIp: 12 } });
    // At the start of a 15-minute counter window, so that the steps below fall in known windows.
    fx.clock.set(Math.ceil(fx.clock.now() / (15 * MIN)) * 15 * MIN);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.2')))).kind, 'approved');
    fx.clock.advance(14 * MIN);
    await lockOut(fx);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.2')))).kind, 'approved', 'still inside the window');
    // That login renewed the memory until minute 29; after it, in the next counter window, fail again:
    fx.clock.advance(15 * MIN + 1);
    await lockOut(fx);
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '192.0.2.2'))), { kind: 'rate-limited', limit: 'user' }, 'forgotten after the window');

    // Per IP: an approved address that sends wrong passwords is stopped like any other.
    await approveAddress(fx, 'carol', '192.0.2.7');
    for (let i = 0; i < 12; i++) await fx.timeOut(fx.authorizer.authorize(fx.attempt(`x${i}`, 'wrong', '192.0.2.7')));
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(fx.attempt('carol', 'right', '192.0.2.7'))), { kind: 'rate-limited', limit: 'ip' });
  });
});

describe('held logins per user', () => {
  it('refuses a login past the cap of held logins at once, closes its upstream, and counts down', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 }, held: 2 });
    await fx.store.setDaemonOtp('alice', true, fx.clock.now());
    const bound = await fx.devices.bind('alice', 'Phone', false);
    assert.equal(bound.status, 'bound');
    const deviceId = bound.status === 'bound' ? bound.device.deviceId : '';
    let held = 0;
    const waiting = [1, 2].map((i) => fx!.authorizer.authorize(fx!.attempt('alice', 'right', `192.0.2.${i}`, { onHold: () => held++ })));
    await eventually(async () => held === 2);
    const third = fx.attempt('alice', 'right', '192.0.2.3', { onHold: () => held++ });
    assert.deepEqual(await fx.timeOut(fx.authorizer.authorize(third)), { kind: 'rate-limited', limit: 'held' });
    assert.equal(third.session.closed, 1);
    assert.equal(held, 2, 'the refused login was never announced as held');
    // Another user is not affected.
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('bob', 'right', '192.0.2.3')))).kind, 'approved');

    for (const r of await fx.requests.listPending(deviceId)) await fx.requests.decide(deviceId, r.id, 'approve');
    assert.deepEqual((await Promise.all(waiting)).map((r) => r.kind), ['approved', 'approved']);
    // Both places are free again: two more can wait.
    const again = [4, 5].map((i) => fx!.authorizer.authorize(fx!.attempt('alice', 'right', `192.0.2.${i}`, { onHold: () => held++ })));
    await eventually(async () => held === 4);
    for (const r of await fx.requests.listPending(deviceId)) await fx.requests.decide(deviceId, r.id, 'deny');
    assert.deepEqual((await Promise.all(again)).map((r) => r.kind), ['denied', 'denied']);
  });
});
