import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { DeviceService } from '../../src/core/device-service.js';
import { recoveryNotice } from '../../src/core/device-notices.js';
import { RecoveryCodes } from '../../src/core/recovery-codes.js';
import type { DeviceRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import type { DeviceNotice, Notifier } from '../../src/core/ports/notifier.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';

class NoticeRecorder implements Notifier {
  readonly name = 'recorder';
  notices: [string, DeviceNotice][] = [];
  async requestOpened(): Promise<void> {}
  async requestSettled(): Promise<void> {}
  async deviceNotice(device: DeviceRecord, notice: DeviceNotice): Promise<void> {
    this.notices.push([device.deviceId, notice]);
  }
}

describe('a used recovery code is told to the bound device', () => {
  it('a store that cannot log the notice fails neither the sign-in nor the other channels', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock();
    const recorder = new NoticeRecorder();
    const down = { logNotice: () => Promise.reject(new Error('store down')) };
    const codes = new RecoveryCodes(store, clock, silentLogger(), recoveryNotice(store, clock, [recorder], silentLogger(), down));
    try {
      const bound = await new DeviceService(store, clock, silentLogger()).bind('alice', 'Pixel', false);
      assert.equal(bound.status, 'bound');
      const [code] = await codes.generate('alice');
      assert.equal(await codes.use('alice', code!), true);
      assert.equal(recorder.notices.length, 1);
    } finally {
      await store.close();
    }
  });

  it('sends a recovery-code-used notice with the codes left to the user\'s device, none without a device, and a failing channel does not fail the sign-in', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock();
    const recorder = new NoticeRecorder();
    const failing: Notifier = { name: 'down', requestOpened: async () => {}, requestSettled: async () => {}, deviceNotice: async () => Promise.reject(new Error('push service down')) };
    const log = { logNotice: (deviceId: string, notice: DeviceNotice) => store.appendEvent({ type: 'device.notice', deviceId, notice }, clock.now(), 60_000) };
    const codes = new RecoveryCodes(store, clock, silentLogger(), recoveryNotice(store, clock, [failing, recorder], silentLogger(), log));
    try {
      const bound = await new DeviceService(store, clock, silentLogger()).bind('alice', 'Pixel', false);
      assert.equal(bound.status, 'bound');
      const [first, second] = await codes.generate('alice');
      assert.equal(await codes.use('alice', first!), true);
      assert.deepEqual(recorder.notices, [[bound.device.deviceId, { kind: 'recovery-code-used', user: 'alice', left: 9, at: clock.now() }]]);
      assert.equal(await codes.use('alice', first!), false, 'used once');
      assert.equal(recorder.notices.length, 1, 'a refused code tells nobody');

      const bobs = await codes.generate('bob');
      assert.equal(await codes.use('bob', bobs[0]!), true);
      assert.equal(recorder.notices.length, 1, 'bob has no device to tell');
      assert.equal(await codes.use('alice', second!), true);
      assert.equal(recorder.notices[1]?.[1].left, 8);
      // The device's event log holds both notices (its event stream sends them), bob's device none.
      const logged = (await store.readEvents(bound.device.deviceId, 0, clock.now(), 60_000)).events;
      assert.deepEqual(
        logged.map((e) => (e.type === 'device.notice' ? [e.deviceId, e.notice.left] : e.type)),
        [[bound.device.deviceId, 9], [bound.device.deviceId, 8]],
      );
    } finally {
      await store.close();
    }
  });
});
