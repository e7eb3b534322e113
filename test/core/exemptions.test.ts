import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { canonicalIp, parseCidr, TrustedNetworks } from '../../src/core/trusted-networks.js';
import { coreFixture, withDevice, type CoreFixture } from './core-fixture.js';

const DAY = 86_400_000;
let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe('trusted networks', () => {
  it('parses IPv4, IPv6, bare addresses and IPv4-mapped ranges, and refuses the rest', () => {
    assert.deepEqual(parseCidr('192.168.1.0/24'), { address: '192.168.1.0', prefix: 24, family: 'ipv4' });
    assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 'ipv6' });
    assert.deepEqual(parseCidr('10.1.2.3'), { address: '10.1.2.3', prefix: 32, family: 'ipv4' });
    assert.deepEqual(parseCidr('::ffff:10.0.0.0/104'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    for (const bad of ['', '10.0.0.0/33', '2001:db8::/129', '10.0.0/8', 'office', '10.0.0.0/8/8', '::ffff:10.0.0.0/64', '10.0.0.0/-1']) {
      assert.equal(parseCidr(bad), null, bad);
    }
  });

  it('matches client addresses of either family, IPv4-mapped ones as IPv4', () => {
    const t = new TrustedNetworks(['10.0.0.0/8', '2001:db8:1::/48', '::ffff:192.168.7.0/120']);
    assert.equal(t.has('10.200.3.4'), true);
    assert.equal(t.has('::ffff:10.200.3.4'), true);
    assert.equal(t.has('192.168.7.99'), true);
    assert.equal(t.has('2001:db8:1:ffff::5'), true);
    assert.equal(t.has('2001:DB8:0001::5'), true);
    assert.equal(t.has('11.0.0.1'), false);
    assert.equal(t.has('2001:db8:2::5'), false);
    assert.equal(t.has('unknown'), false);
    assert.equal(new TrustedNetworks([]).has('10.0.0.1'), false);
  });

  it('spells a client address the way the listeners do', () => {
    assert.equal(canonicalIp('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalIp('10.0.0.0/8'), null);
    assert.equal(canonicalIp('scanner'), null);
  });

  it('is validated by the config schema with the key path', () => {
    const base = { listeners: [{ protocol: 'imap', port: 1143, tls: 'none', allowInsecure: true }], upstream: { imap: { host: 'h', port: 143, tls: 'none' } }, portal: { tls: false } };
    const ok = configSchema.safeParse({ ...base, daemonOtp: { trustedNetworks: ['10.0.0.0/8', 'fd00::/8'] } });
    assert.equal(ok.success, true);
    assert.deepEqual(ok.success && ok.data.daemonOtp.trustedNetworks, ['10.0.0.0/8', 'fd00::/8']);
    assert.equal(ok.success && ok.data.audit.retention, 90 * DAY);
    const bad = configSchema.safeParse({ ...base, daemonOtp: { trustedNetworks: ['10.0.0.0/8', 'the office'] } });
    assert.equal(bad.success, false);
    assert.deepEqual(!bad.success && bad.error.issues[0]?.path, ['daemonOtp', 'trustedNetworks', 1]);
  });
});

describe('LoginAuthorizer exemptions', () => {
  it('lets a correct password from a trusted network in without a push; elsewhere the login is held', async () => {
    fx = coreFixture({ trustedNetworks: ['192.0.2.0/24'], daemon: { holdTimeMs: 50 } });
    const deviceId = await withDevice(fx);
    const a = fx.attempt('ALICE', 'right', '192.0.2.55');
    const r = await fx.timeOut(fx.authorizer.authorize(a));
    assert.equal(r.kind === 'approved' && r.reason, 'trusted-network');
    assert.equal(a.session.closed, 0);
    assert.equal(fx.notifier.opened.length, 0);
    assert.deepEqual(await fx.approvals.list('alice'), [], 'a trusted login opens no approval');

    const outside = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '198.51.100.9')));
    assert.equal(outside.kind, 'pending-timeout');
    assert.equal(fx.notifier.opened.length, 1);
    assert.equal((await fx.requests.listPending(deviceId))[0]?.clientIp, '198.51.100.9');
  });

  it('refuses a wrong password from a trusted network, with no push', async () => {
    fx = coreFixture({ trustedNetworks: ['192.0.2.0/24'] });
    await withDevice(fx);
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'wrong', '192.0.2.55')));
    assert.equal(r.kind, 'bad-password');
    assert.equal(fx.notifier.opened.length, 0);
  });

  it('lets a standing approval in for its address only, even with bindTo: user and no device', async () => {
    fx = coreFixture({ bindTo: 'user', daemon: { enforce: 'all', holdTimeMs: 50 } });
    await fx.approvals.grantStanding('scanner', '203.0.113.20', 365 * DAY);
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('Scanner', 'right', '203.0.113.20')));
    assert.equal(r.kind === 'approved' && r.reason, 'standing-approval');
    // Another address of the same user is no scanner: no device, so refused as usual.
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('scanner', 'right', '203.0.113.21')))).kind, 'no-device');
    const [listed] = await fx.approvals.list('scanner');
    assert.equal(listed?.standing, true);
    assert.equal(listed?.expiresAt, fx.clock.now() + 365 * DAY);

    // It ends at its ttl, or when revoked.
    fx.clock.advance(365 * DAY);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('scanner', 'right', '203.0.113.20')))).kind, 'no-device');
    await fx.approvals.grantStanding('scanner', '203.0.113.20', DAY);
    assert.equal(await fx.approvals.revoke('scanner', '203.0.113.20'), 1);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('scanner', 'right', '203.0.113.20')))).kind, 'no-device');
  });

  it('spares a standing approval\'s address from the per-user failed-login cap that others ran into', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 3 } });
    await fx.approvals.grantStanding('scanner', '203.0.113.20', DAY);
    for (let i = 0; i < 3; i++) assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('scanner', 'wrong', `198.51.100.${i + 1}`)))).kind, 'bad-password');
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('scanner', 'right', '198.51.100.50')))).kind, 'rate-limited');
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('scanner', 'right', '203.0.113.20')));
    assert.equal(r.kind === 'approved' && r.reason, 'not-required');
  });

  it('keeps a standing approval when a tap approves the same address, and the tap one does not outlive it', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    await withDevice(fx);
    await fx.approvals.grantStanding('alice', '203.0.113.20', 30 * DAY);
    await fx.approvals.grant({ id: 'r1', type: 'connection', user: 'alice', deviceId: 'd', protocol: 'imap', clientIp: '203.0.113.20', createdAt: fx.clock.now(), expiresAt: fx.clock.now() + 1000, status: 'approved' });
    fx.clock.advance(2 * DAY);
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '203.0.113.20')));
    assert.equal(r.kind === 'approved' && r.reason, 'standing-approval');
  });
});
