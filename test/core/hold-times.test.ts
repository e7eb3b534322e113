import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configHoldTimeWarnings, holdTimeWarnings, resolveHoldTimes } from '../../src/core/hold-times.js';
import { ConfigError, parseConfig } from '../../src/config/load-config.js';

const minimal = {
  listeners: [{ protocol: 'imap', port: 993, tls: 'implicit' }],
  tls: { cert: 'c.crt', key: 'c.key' },
  upstream: { imap: { host: 'mail.internal', port: 993, tls: 'implicit' } },
};

describe('hold times', () => {
  it('holds each protocol for holdTimes.X, else holdTime; SMTP for at most 25 s unless set', () => {
    assert.deepEqual(resolveHoldTimes({ holdTime: 30_000 }), { imap: 30_000, pop3: 30_000, smtp: 25_000 });
    assert.deepEqual(resolveHoldTimes({ holdTime: 10_000 }), { imap: 10_000, pop3: 10_000, smtp: 10_000 });
    assert.deepEqual(resolveHoldTimes({ holdTime: 30_000, holdTimes: { pop3: 50_000, smtp: 40_000 } }), { imap: 30_000, pop3: 50_000, smtp: 40_000 });
    const c = parseConfig({ ...minimal, daemonOtp: { holdTimes: { smtp: '20s' } } }, '/etc/mailotp');
    assert.deepEqual(c.daemonOtp.holdTimes, { smtp: 20_000 });
  });

  it('the defaults warn about no common client', () => {
    const d = parseConfig(minimal, '/etc/mailotp').daemonOtp;
    assert.deepEqual(holdTimeWarnings(d), []);
  });

  it('warns when a hold comes within 5 s of a client timeout, naming the key to change', () => {
    const w = holdTimeWarnings({ holdTime: 30_000, holdTimes: { smtp: 30_000, pop3: 58_000 }, progressInterval: 10_000 });
    assert.deepEqual(w.map((x) => x.path), ['daemonOtp.holdTimes.pop3', 'daemonOtp.holdTimes.smtp']);
    assert.match(w[0]?.message ?? '', /POP3 .* 58 s, .*Outlook \(60 s\), Apple Mail \(60 s\)/);
    assert.match(w[1]?.message ?? '', /swaks \(30 s\)/);
    // IMAP: the progress lines break the silence; only a progressInterval near a timeout warns.
    assert.deepEqual(holdTimeWarnings({ holdTime: 90_000, progressInterval: 10_000 }, ['imap']), []);
    const imap = holdTimeWarnings({ holdTime: 90_000, progressInterval: 18_000 }, ['imap']);
    assert.equal(imap[0]?.path, 'daemonOtp.progressInterval');
    assert.match(imap[0]?.message ?? '', /mbsync/);
    assert.deepEqual(holdTimeWarnings({ holdTime: 90_000, progressInterval: 10_000 }, ['pop3']).map((x) => x.path), ['daemonOtp.holdTime']);
    assert.deepEqual(holdTimeWarnings({ holdTime: 90_000, progressInterval: 10_000 }, ['smtp']), [], 'SMTP: holdTime capped at 25 s');
  });

  it('looks at the protocols a config serves, and at none when daemon OTP is off', () => {
    const slow = { ...minimal, daemonOtp: { holdTime: '58s' } };
    assert.deepEqual(configHoldTimeWarnings(parseConfig(slow, '/etc/mailotp')), [], 'IMAP only: the progress lines keep it alive');
    const pop3 = { ...slow, listeners: [{ protocol: 'pop3', port: 995, tls: 'implicit' }], upstream: { pop3: { host: 'h', port: 995, tls: 'implicit' } } };
    assert.deepEqual(configHoldTimeWarnings(parseConfig(pop3, '/etc/mailotp')).map((w) => w.path), ['daemonOtp.holdTime']);
    assert.deepEqual(configHoldTimeWarnings(parseConfig({ ...pop3, daemonOtp: { holdTime: '58s', enabled: false } }, '/etc/mailotp')), []);
  });

  it('requires requestTtl to outlast every hold', () => {
    try {
      parseConfig({ ...minimal, daemonOtp: { requestTtl: '1m', holdTimes: { pop3: '2m' } } }, '/etc/mailotp');
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => `${p.path}: ${p.message}`), ['daemonOtp.requestTtl: must be at least holdTimes.pop3']);
    }
  });
});
