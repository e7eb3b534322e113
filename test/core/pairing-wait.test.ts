import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { DeviceService } from '../../src/core/device-service.js';
import { PairingService } from '../../src/core/pairing-service.js';
import { silentLogger } from '../../src/log/logger.js';
import { storeBackends } from '../helpers/store-backends.js';

const backends = storeBackends('pw-test');

for (const [name, open] of backends) {
  describe(`A desktop waiting on a QR pairing, on ${name}`, () => {
    /** The desktop's instance and the phone's (one SQLite store serves both). */
    const instances = () => {
      const stores = open();
      const clock = new FakeClock();
      const [desk, phone] = [stores[0]!, stores[1] ?? stores[0]!].map((s) => new PairingService(s, clock, new DeviceService(s, clock, silentLogger()), [], silentLogger()));
      return { desk: desk!, phone: phone!, close: () => Promise.all(stores.map((s) => s.close())) };
    };

    it('learns of the phone\'s answer on the other instance at once, long before its hold ends', async () => {
      const { desk, phone, close } = instances();
      try {
        const link = await desk.startLink('alice');
        let over = false;
        const wait = desk.waitWhileWaiting(link.linkId, 20_000, new AbortController().signal).then(() => (over = true));
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(over, false, 'still waiting while the phone has not answered');
        const started = Date.now();
        assert.equal((await phone.answerLink(link.secret, link.number, 'Pixel')).status, 'bound');
        await wait;
        // The 2 s re-read would also end it; the published event ends it well before that.
        assert.ok(Date.now() - started < 1_500, `answered after ${Date.now() - started} ms`);
        assert.equal(await desk.linkState(link.linkId), 'bound');
      } finally {
        await close();
      }
    });

    it('ends at its hold with nothing answered, and at once when aborted (the browser left, or shutdown)', async () => {
      const { desk, close } = instances();
      try {
        const link = await desk.startLink('bob');
        const started = Date.now();
        await desk.waitWhileWaiting(link.linkId, 300, new AbortController().signal);
        assert.ok(Date.now() - started >= 290);
        assert.equal(await desk.linkState(link.linkId), 'waiting');
        const ctrl = new AbortController();
        const wait = desk.waitWhileWaiting(link.linkId, 20_000, ctrl.signal);
        ctrl.abort();
        await wait;
        const aborted = new AbortController();
        aborted.abort();
        await desk.waitWhileWaiting(link.linkId, 20_000, aborted.signal);
      } finally {
        await close();
      }
    });
  });
}
