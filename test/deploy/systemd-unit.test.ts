import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load-config.js';
import { parseDuration } from '../../src/config/duration.js';
import { ROOT, runProcess } from '../e2e/harness.js';

const UNIT = join(ROOT, 'deploy', 'systemd', 'mailotp.service');
const SYSUSERS = join(ROOT, 'deploy', 'systemd', 'mailotp.sysusers.conf');

/** Every value of a key in the unit (systemd allows a key more than once). */
function values(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}
function value(unit: string, key: string): string {
  const v = values(unit, key);
  assert.equal(v.length, 1, `${key}= once in the unit`);
  return v[0]!;
}

describe('deploy/systemd/mailotp.service', () => {
  const unit = readFileSync(UNIT, 'utf8');

  it('passes systemd-analyze verify', async () => {
    const r = await runProcess('systemd-analyze', ['verify', UNIT]);
    assert.equal(r.code, 0, r.stderr);
    // verify reports unknown keys and bad values on stderr but may still exit 0.
    assert.equal(r.stderr.trim(), '');
  });

  it('has an exposure level of at most 2.0 in systemd-analyze security (0 = locked down, 10 = exposed)', async () => {
    const r = await runProcess('systemd-analyze', ['security', '--offline=yes', '--no-pager', '--threshold=20', UNIT]);
    const level = /Overall exposure level for mailotp\.service: ([\d.]+)/.exec(r.stdout)?.[1];
    process.stdout.write(`systemd-analyze security: exposure ${level}\n`);
    assert.equal(r.code, 0, `exposure ${level}: ${r.stdout.split('\n').filter((l) => l.includes('✗')).join('\n')}`);
  });

  it('runs as the sysusers user, binds low ports with that one capability, keeps state in StateDirectory', () => {
    assert.equal(value(unit, 'User'), 'mailotp');
    assert.match(readFileSync(SYSUSERS, 'utf8'), /^u mailotp - ".*" \/var\/lib\/mailotp /m);
    assert.equal(value(unit, 'CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(value(unit, 'AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
    assert.equal(value(unit, 'NoNewPrivileges'), 'yes');
    assert.equal(value(unit, 'ProtectSystem'), 'strict');
    assert.equal(value(unit, 'ProtectHome'), 'yes');
    assert.equal(value(unit, 'PrivateTmp'), 'yes');
    assert.equal(value(unit, 'StateDirectory'), 'mailotp');
    assert.equal(value(unit, 'WorkingDirectory'), '/var/lib/mailotp');
    assert.deepEqual(values(unit, 'SystemCallFilter'), ['@system-service', '~@privileged @resources']);
    assert.ok(Number(value(unit, 'LimitNOFILE')) >= 2 * 10_000 + 1024, 'two descriptors per session at limits.maxConnections');
  });

  it('starts `mailotp start`, reloads with SIGHUP, and waits longer than the default drain on stop', () => {
    assert.match(value(unit, 'ExecStart'), /^\/usr\/bin\/node \S+\/bin\/mailotp start --config \/etc\/mailotp\/mailotp\.yaml$/);
    assert.equal(value(unit, 'ExecReload'), '/bin/kill -HUP $MAINPID');
    const drain = parseConfig({ listeners: [{ protocol: 'imap', port: 993, tls: 'none', allowInsecure: true }], upstream: { imap: { host: 'x', port: 143, tls: 'none' } }, portal: { tls: false } }, ROOT).shutdown.drainTimeout;
    const stop = parseDuration(value(unit, 'TimeoutStopSec'));
    assert.ok(stop !== null && stop > drain, `TimeoutStopSec ${stop} ms > shutdown.drainTimeout ${drain} ms`);
  });
});
