import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { FakeClock } from '../../src/core/clock.js';
import type { DeviceRecord } from '../../src/core/types.js';
import { UserService, type DaemonOtpPolicy } from '../../src/core/user-service.js';
import { createLogger } from '../../src/log/logger.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';

const PHONE: DeviceRecord = { deviceId: 'd1', user: 'alice', name: 'Phone', tokenHash: '0'.repeat(64), createdAt: 0 };

function users(policy: DaemonOtpPolicy): { service: UserService; store: SqliteStore; clock: FakeClock; events: () => Record<string, unknown>[] } {
  const store = new SqliteStore({ path: ':memory:' });
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination, pretty: false });
  const events = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => typeof o.event === 'string');
  return { service: new UserService(store, clock, logger, policy), store, clock, events };
}

describe('UserService', () => {
  it('turns the daemon-OTP switch on and off and audits each change with who made it', async () => {
    const u = users({ enabled: true, enforce: 'optional' });
    try {
      assert.deepEqual(await u.service.daemonOtp('alice', null), { own: false, required: false, fixed: null });
      await u.service.setDaemonOtp('alice', true, 'cli');
      assert.deepEqual(await u.service.daemonOtp('alice', null), { own: true, required: true, fixed: null });
      assert.deepEqual(await u.store.getUser('alice'), { user: 'alice', daemonOtp: true, updatedAt: u.clock.now() });
      await u.service.setDaemonOtp('alice', false, 'portal');
      assert.deepEqual(await u.service.daemonOtp('alice', PHONE), { own: false, required: false, fixed: null });
      assert.deepEqual(
        u.events().map((e) => [e.event, e.user, e.on, e.via]),
        [
          ['user.daemon-otp', 'alice', true, 'cli'],
          ['user.daemon-otp', 'alice', false, 'portal'],
        ],
      );
    } finally {
      await u.store.close();
    }
  });

  it("the admin's policy fixes the switch: off for everyone, on for all, or on once a phone is bound", async () => {
    const off = users({ enabled: false, enforce: 'all' });
    const all = users({ enabled: true, enforce: 'all' });
    const bound = users({ enabled: true, enforce: 'bound' });
    try {
      await off.service.setDaemonOtp('alice', true, 'cli');
      assert.deepEqual(await off.service.daemonOtp('alice', PHONE), { own: true, required: false, fixed: 'off' });
      assert.deepEqual(await all.service.daemonOtp('alice', null), { own: false, required: true, fixed: 'all' });
      assert.deepEqual(await bound.service.daemonOtp('alice', PHONE), { own: false, required: true, fixed: 'bound' });
      assert.deepEqual(await bound.service.daemonOtp('alice', null), { own: false, required: false, fixed: null });
    } finally {
      await Promise.all([off.store.close(), all.store.close(), bound.store.close()]);
    }
  });
});
