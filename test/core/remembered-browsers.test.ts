import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { RememberedBrowsers } from '../../src/core/remembered-browsers.js';
import { hashToken } from '../../src/core/tokens.js';
import { silentLogger } from '../../src/log/logger.js';
import { storeBackends } from '../helpers/store-backends.js';

const DAY = 86_400_000;
const FROM = { browser: 'Firefox', os: 'Windows', clientIp: '192.0.2.7' };

const backends = storeBackends('rb-test');

for (const [name, open] of backends) {
  describe(`RememberedBrowsers on ${name}`, () => {
    /** Two services on the stores (one SQLite store serves both), the same clock. */
    const pair = (ttlMs = 30 * DAY) => {
      const stores = open();
      const clock = new FakeClock();
      const [one, two] = [stores[0]!, stores[1] ?? stores[0]!].map((s) => new RememberedBrowsers(s, clock, silentLogger(), { ttlMs }));
      return { one: one!, two: two!, clock, close: () => Promise.all(stores.map((s) => s.close())) };
    };

    it('skips only for the user it was remembered for, keeps only a hash, and lists browser, OS, address and last use', async () => {
      const { one, two, clock, close } = pair();
      try {
        const made = await one.remember('alice', FROM);
        assert.ok(made);
        assert.match(made.token, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(made.expiresAt, clock.now() + 30 * DAY);
        assert.equal(await two.skips('bob', made.token, '192.0.2.8'), false, "alice's cookie never skips bob's step");
        assert.equal(await two.skips('alice', 'x'.repeat(43), '192.0.2.8'), false);
        assert.equal(await two.skips('alice', undefined, '192.0.2.8'), false);
        let [listed] = await two.list('alice');
        assert.ok(listed);
        assert.equal(listed.id, hashToken(made.token));
        assert.notEqual(listed.id, made.token);
        assert.equal(listed.lastUsedAt, undefined);
        clock.advance(DAY);
        assert.equal(await two.skips('alice', made.token, '192.0.2.8'), true);
        [listed] = await one.list('alice');
        assert.deepEqual({ ...listed, id: undefined }, { id: undefined, user: 'alice', ...FROM, createdAt: made.expiresAt - 30 * DAY, expiresAt: made.expiresAt, lastUsedAt: clock.now(), lastIp: '192.0.2.8' });
        assert.deepEqual(await one.list('bob'), []);
      } finally {
        await close();
      }
    });

    it('ends after portal.rememberBrowser, counted from when it was remembered', async () => {
      const { one, clock, close } = pair(2 * DAY);
      try {
        const made = await one.remember('alice', FROM);
        clock.advance(2 * DAY - 1);
        assert.equal(await one.skips('alice', made!.token, FROM.clientIp), true);
        clock.advance(1);
        assert.equal(await one.skips('alice', made!.token, FROM.clientIp), false);
        assert.deepEqual(await one.list('alice'), []);
      } finally {
        await close();
      }
    });

    it('revokes one (on the other instance at once), not another user\'s, and all, including one remembered again over an old cookie', async () => {
      const { one, two, close } = pair();
      try {
        const x = (await one.remember('alice', FROM))!;
        const y = (await one.remember('alice', { ...FROM, browser: 'Chrome', os: 'Android' }))!;
        const z = (await one.remember('alice', FROM, x.token))!;
        assert.equal(await one.skips('alice', x.token, FROM.clientIp), false, 'remembering again over this browser\'s cookie replaces it');
        assert.equal((await one.list('alice')).length, 2);
        const bobs = (await one.remember('bob', FROM))!;
        assert.equal(await two.revoke('alice', hashToken(bobs.token), 'portal'), false, "bob's browser is not alice's to revoke");
        assert.equal(await two.revoke('alice', 'not-an-id', 'portal'), false);
        assert.equal(await two.revoke('alice', hashToken(y.token), 'portal'), true);
        assert.equal(await one.skips('alice', y.token, FROM.clientIp), false);
        assert.equal(await one.skips('alice', z.token, FROM.clientIp), true);
        assert.equal(await two.revokeAll('alice', 'cli'), 1);
        assert.equal(await one.skips('alice', z.token, FROM.clientIp), false);
        assert.deepEqual(await one.list('alice'), []);
        assert.equal(await one.skips('bob', bobs.token, FROM.clientIp), true, "bob's stays");
        const again = (await one.remember('alice', FROM))!;
        assert.equal(await two.skips('alice', again.token, FROM.clientIp), true, 'a browser remembered after revoke-all works');
      } finally {
        await close();
      }
    });

    it('off (0): remembers nothing and skips nothing', async () => {
      const { one, close } = pair(0);
      try {
        assert.equal(one.enabled, false);
        assert.equal(await one.remember('alice', FROM), null);
        assert.deepEqual(await one.list('alice'), []);
      } finally {
        await close();
      }
    });
  });
}
