import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load-config.js';
import { parseDuration } from '../../src/config/duration.js';

const minimal = {
  listeners: [{ protocol: 'imap', port: 993, tls: 'implicit' }],
  tls: { cert: 'certs/server.crt', key: 'certs/server.key' },
  upstream: { imap: { host: 'mail.internal', port: 993, tls: 'implicit' } },
};

function problems(doc: unknown): string[] {
  try {
    parseConfig(doc, '/etc/mailotp');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('config', () => {
  it('parses durations', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('20s'), 20_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('30d'), 2_592_000_000);
    for (const bad of ['', '24', 'h', '-1s', '1 w', '1y', 'soon']) assert.equal(parseDuration(bad), null, bad);
  });

  it('fills the documented defaults, resolves paths against the file and freezes the result', () => {
    const c = parseConfig(minimal, '/etc/mailotp');
    assert.equal(c.store.driver, 'sqlite');
    assert.equal(c.store.path, '/etc/mailotp/data/mailotp.db');
    assert.equal(c.tls?.cert, '/etc/mailotp/certs/server.crt');
    assert.deepEqual(
      { ...c.daemonOtp },
      {
        enabled: true,
        enforce: 'optional',
        approvalTtl: 86_400_000,
        holdTime: 30_000,
        bindTo: 'client-ip',
        requestTtl: 300_000,
        progressInterval: 10_000,
        denyCooldown: 900_000,
        reportCooldown: 86_400_000,
        trustedNetworks: [],
      },
    );
    assert.equal(c.audit.retention, 90 * 86_400_000);
    assert.deepEqual({ ...c.users }, { caseSensitive: false, stripDomain: false });
    assert.equal(c.listeners[0]?.host, '0.0.0.0');
    assert.equal(c.listeners[0]?.allowInsecure, false);
    assert.equal(c.upstream.imap?.verify, true);
    assert.equal(c.portal.port, 8443);
    assert.equal(c.portal.tls, true);
    assert.equal(c.log.level, 'info');
    assert.equal(c.limits.maxLineLength, 8192);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.daemonOtp));
  });

  it('names the key path of each problem', () => {
    assert.deepEqual(problems({ ...minimal, daemonOtp: { approvalTtl: 'a day' } }), ['daemonOtp.approvalTtl: expected a duration like "24h"']);
    assert.deepEqual(problems({ ...minimal, users: { defaultDomain: 'not a domain' } }), ['users.defaultDomain: expected a domain like example.com']);
    assert.deepEqual(problems({ ...minimal, users: { casesensitive: true } }), ['users: Unrecognized key: "casesensitive"']);
    assert.deepEqual(problems({ ...minimal, listeners: [{ protocol: 'imap', port: 143, tls: 'none' }] }), [
      'listeners.0.tls: tls: none sends passwords in clear; set allowInsecure: true to accept that',
    ]);
    assert.ok(problems({ ...minimal, listeners: [{ protocol: 'imap', port: 99999, tls: 'implicit' }] })[0]?.startsWith('listeners.0.port:'));
    assert.ok(problems({ ...minimal, store: { driver: 'redis' } }).includes('store.url: required when driver is redis (unless sentinels are given)'));
    assert.ok(problems({ ...minimal, daemonOtp: { enforce: 'sometimes' } })[0]?.startsWith('daemonOtp.enforce:'));
    assert.ok(problems({ ...minimal, typo: 1 }).length === 1);
    assert.deepEqual(problems({ ...minimal, daemonOtp: { trustedNetworks: ['10.0.0.0/33'] } }), ['daemonOtp.trustedNetworks.0: expected a network like "192.168.1.0/24" or "2001:db8::/32"']);
    assert.deepEqual(problems({ ...minimal, audit: { retention: '10m' } }), ['audit.retention: must be at least 3600000ms']);
    assert.ok(problems({ ...minimal, upstream: {} }).some((p) => p.startsWith('listeners.0.protocol: no upstream.imap')));
    assert.ok(problems({ ...minimal, tls: undefined }).some((p) => p.startsWith('tls:')));
  });

  it('store.sentinels: HOST:PORT list instead of url, with its master name and the replica wait', () => {
    const c = parseConfig({ ...minimal, store: { driver: 'redis', sentinels: ['10.0.0.1:26379', '[::1]:26380'], sentinelName: 'mail' } }, '/etc/mailotp');
    assert.deepEqual(c.store.sentinels, ['10.0.0.1:26379', '[::1]:26380']);
    assert.equal(c.store.sentinelName, 'mail');
    assert.equal(c.store.waitReplicas, undefined);
    assert.equal(c.store.waitTimeout, 1000);
    assert.deepEqual(problems({ ...minimal, store: { driver: 'redis', url: 'redis://r:6379', sentinels: ['s:26379'] } }), ['store.sentinels: use either url or sentinels, not both']);
    assert.deepEqual(problems({ ...minimal, store: { driver: 'redis', sentinels: ['s26379'] } }), ['store.sentinels.0: expected HOST:PORT']);
    assert.deepEqual(problems({ ...minimal, store: { driver: 'redis', sentinels: ['s:1'], waitTimeout: '1m' } }), ['store.waitTimeout: at most 10s']);
  });

  it('push.webpush: a mailto: or https: subject, and a key file resolved against the config folder', () => {
    const c = parseConfig({ ...minimal, push: { webpush: { subject: 'mailto:admin@example.com' } } }, '/etc/mailotp');
    assert.deepEqual(c.push.webpush, { subject: 'mailto:admin@example.com', vapidKeyFile: '/etc/mailotp/data/webpush-vapid.json', timeout: 10_000 });
    const own = parseConfig({ ...minimal, push: { webpush: { subject: 'https://mail.example.com/', vapidKeyFile: '/var/lib/mailotp/vapid.json' } } }, '/etc/mailotp');
    assert.equal(own.push.webpush?.vapidKeyFile, '/var/lib/mailotp/vapid.json');
    for (const subject of ['admin@example.com', 'http://example.com', 'mailto:nobody', '']) {
      assert.deepEqual(problems({ ...minimal, push: { webpush: { subject } } }), ['push.webpush.subject: expected mailto:admin@example.com or an https:// URL'], subject);
    }
    assert.deepEqual(problems({ ...minimal, push: { webpush: {} } }).length, 1);
  });

  it('metrics: no listener unless a port is given, on loopback unless a host is given', () => {
    assert.deepEqual(parseConfig(minimal, '/etc/mailotp').metrics, { host: '127.0.0.1' });
    assert.deepEqual(parseConfig({ ...minimal, metrics: { port: 9465 } }, '/etc/mailotp').metrics, { host: '127.0.0.1', port: 9465 });
    assert.deepEqual(parseConfig({ ...minimal, metrics: { host: '10.0.0.5', port: 0 } }, '/etc/mailotp').metrics, { host: '10.0.0.5', port: 0 });
    assert.deepEqual(problems({ ...minimal, metrics: { port: 70000 } }).filter((p) => p.startsWith('metrics.port')).length, 1);
    assert.deepEqual(problems({ ...minimal, metrics: { port: 9465, path: '/m' } }).filter((p) => p.startsWith('metrics')).length, 1, 'unknown keys are refused');
  });

  it('reads YAML and JSON files and reports unreadable ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-config-'));
    writeFileSync(join(dir, 'a.yaml'), 'listeners:\n  - { protocol: imap, port: 993, tls: implicit }\ntls: { cert: c.crt, key: c.key }\nupstream:\n  imap: { host: h, port: 993, tls: implicit }\n');
    assert.equal(loadConfig(join(dir, 'a.yaml')).tls?.key, join(dir, 'c.key'));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(minimal));
    assert.equal(loadConfig(join(dir, 'b.json')).upstream.imap?.host, 'mail.internal');
    assert.throws(() => loadConfig(join(dir, 'missing.yaml')), ConfigError);
    writeFileSync(join(dir, 'bad.yaml'), 'listeners: [\n');
    assert.throws(() => loadConfig(join(dir, 'bad.yaml')), /not valid YAML/);
  });

  it('checks the forward-auth settings: hosts, a domain, and every host under that domain', () => {
    const c = parseConfig({ ...minimal, portal: { allowedRedirects: ['webmail.example.com', 'mail.example.com:8443'], cookieDomain: 'example.com' } }, '/etc/mailotp');
    assert.deepEqual(c.portal.allowedRedirects, ['webmail.example.com', 'mail.example.com:8443']);
    assert.equal(c.portal.cookieDomain, 'example.com');
    assert.deepEqual(parseConfig(minimal, '/etc/mailotp').portal.allowedRedirects, []);
    assert.deepEqual(problems({ ...minimal, portal: { allowedRedirects: ['webmail.other.example'], cookieDomain: 'example.com' } }), [
      'portal.allowedRedirects.0: not under portal.cookieDomain example.com: that host would never see the session cookie',
    ]);
    assert.equal(problems({ ...minimal, portal: { allowedRedirects: ['https://webmail.example.com/'] } }).length, 1);
    assert.equal(problems({ ...minimal, portal: { cookieDomain: '.example.com' } }).length, 1);
    assert.equal(problems({ ...minimal, portal: { cookieDomain: 'localhost' } }).length, 1);
  });

  it('portal.rememberBrowser: 30 days by default, a duration, and off (or 0s) turns it off', () => {
    assert.equal(parseConfig(minimal, '/etc/mailotp').portal.rememberBrowser, 30 * 86_400_000);
    assert.equal(parseConfig({ ...minimal, portal: { rememberBrowser: '7d' } }, '/etc/mailotp').portal.rememberBrowser, 7 * 86_400_000);
    assert.equal(parseConfig({ ...minimal, portal: { rememberBrowser: 'off' } }, '/etc/mailotp').portal.rememberBrowser, 0);
    assert.equal(parseConfig({ ...minimal, portal: { rememberBrowser: '0s' } }, '/etc/mailotp').portal.rememberBrowser, 0);
    assert.equal(problems({ ...minimal, portal: { rememberBrowser: 'forever' } }).length, 1);
  });
});
