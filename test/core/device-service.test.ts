import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { coreFixture } from './core-fixture.js';
import { hashToken } from '../../src/core/tokens.js';

describe('DeviceService', () => {
  it('binds one device per user, stores only the token hash, and authenticates the token', async () => {
    const fx = coreFixture();
    try {
      const r = await fx.devices.bind('alice', 'Pixel', false);
      assert.equal(r.status, 'bound');
      if (r.status !== 'bound') return;
      const stored = await fx.store.getDeviceByUser('alice');
      assert.equal(stored?.tokenHash, hashToken(r.token));
      assert.ok(!JSON.stringify(stored).includes(r.token.split('.')[1]!), 'the secret part is not stored');
      assert.equal((await fx.devices.authenticate(r.token))?.deviceId, r.device.deviceId);
      assert.equal(await fx.devices.authenticate(`${r.token}x`), null);
      assert.equal(await fx.devices.authenticate('garbage'), null);
      assert.equal(await fx.devices.authenticate(`${r.device.deviceId}.`), null);

      const again = await fx.devices.bind('alice', 'Other', false);
      assert.equal(again.status, 'exists');
      const replaced = await fx.devices.bind('alice', 'Other', true);
      assert.equal(replaced.status, 'bound');
      assert.equal(await fx.devices.authenticate(r.token), null, 'the old token stops working');
      assert.equal((await fx.devices.remove('alice'))?.name, 'Other');
      assert.equal(await fx.store.getDeviceByUser('alice'), null);
    } finally {
      await fx.close();
    }
  });
});
