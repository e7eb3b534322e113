import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { RecoveryCodes } from '../../src/core/recovery-codes.js';
import { SecondFactorService, type MethodProvider } from '../../src/core/second-factor.js';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { interleave } from '../helpers/interleaving-store.js';

describe('RecoveryCodes', () => {
  it('ten codes, each works once, stored only hashed; new ones void the old', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock();
    const used: [string, number][] = [];
    const rc = new RecoveryCodes(store, clock, silentLogger(), async (u, left) => {
      used.push([u, left]);
    });
    const codes = await rc.generate('alice');
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, /^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
    const raw = (await store.getValue('recovery:alice', clock.now())) ?? '';
    for (const c of codes) assert.ok(!raw.includes(c) && !raw.includes(c.replace(/-/g, '')));
    assert.equal(await rc.use('alice', codes[3]!.toUpperCase().replace(/-/g, ' ')), true);
    assert.equal(await rc.use('alice', codes[3]!), false, 'a second use is refused');
    assert.equal(await rc.use('bob', codes[4]!), false);
    assert.equal(await rc.use('alice', 'aaaa-bbbb-cccc'), false);
    assert.equal(await rc.remaining('alice'), 9);
    assert.deepEqual(used, [['alice', 9]]);
    await rc.generate('alice');
    assert.equal(await rc.use('alice', codes[5]!), false, 'generating new codes voids the old');
    assert.equal(await rc.remaining('alice'), 10);
    await rc.reset('alice');
    assert.equal(await rc.isSetUp('alice'), false);
    await store.close();
  });

  it('a code used while new codes are generated, or while the codes are reset, never brings the old list back', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock();
    try {
      const plain = new RecoveryCodes(store, clock, silentLogger());
      const old = await plain.generate('alice');
      let fresh: string[] = [];
      // The use has read the old list when the new codes land, before it writes.
      const racing = new RecoveryCodes(interleave(store, 'recovery:alice', async () => (fresh = await plain.generate('alice'))), clock, silentLogger());
      assert.equal(await racing.use('alice', old[0]!), false, 'voided by the new codes');
      assert.equal(await plain.remaining('alice'), 10);
      assert.equal(await plain.use('alice', old[1]!), false, 'the old list is gone');
      assert.equal(await plain.use('alice', fresh[0]!), true);

      const again = await plain.generate('alice');
      const resetting = new RecoveryCodes(interleave(store, 'recovery:alice', () => plain.reset('alice')), clock, silentLogger());
      assert.equal(await resetting.use('alice', again[0]!), false, 'voided by the reset');
      assert.equal(await plain.isSetUp('alice'), false);
      assert.equal(await plain.use('alice', again[1]!), false);
    } finally {
      await store.close();
    }
  });
});

describe('SecondFactorService', () => {
  const fake = (id: MethodProvider['id'], users: Set<string>): MethodProvider => ({
    id,
    isSetUp: async (u) => users.has(u),
    reset: async (u) => {
      users.delete(u);
    },
  });

  it('lists what is set up among allowed methods, keeps a chosen default while it is set up, and counts what the policy still wants', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock();
    const phone = new Set(['alice']);
    const totp = new Set(['alice', 'bob']);
    const recovery = new Set(['alice', 'bob']);
    const sf = new SecondFactorService([fake('phone', phone), fake('totp', totp), fake('recovery', recovery)], store, clock, silentLogger(), {
      methods: ['phone', 'totp', 'passkey', 'recovery'],
      require: 'all',
    });
    assert.deepEqual(sf.available(), ['phone', 'totp', 'recovery'], 'passkey is allowed but not implemented here');
    assert.deepEqual(await sf.methodsOf('alice'), ['phone', 'totp', 'recovery']);
    assert.equal(await sf.defaultMethod('alice'), 'phone');
    assert.equal(await sf.defaultMethod('bob'), 'totp', 'recovery codes are never offered first while another method is there');
    assert.equal(await sf.setDefault('bob', 'phone'), false);
    assert.equal(await sf.setDefault('alice', 'totp'), true);
    assert.equal(await sf.defaultMethod('alice'), 'totp');
    assert.equal(await sf.missing('alice'), 0);
    assert.equal(await sf.missing('bob'), 1);
    assert.equal(await sf.missing('carol'), 3);
    assert.equal(await sf.reset('alice', 'totp', 'cli'), true);
    assert.equal(await sf.reset('alice', 'totp', 'cli'), false);
    assert.equal(await sf.defaultMethod('alice'), 'phone', 'a removed default falls back');
    assert.equal(await sf.defaultMethod('carol'), null);

    const limited = new SecondFactorService([fake('phone', phone), fake('totp', totp)], store, clock, silentLogger(), { methods: ['totp'], require: 2 });
    assert.deepEqual(await limited.methodsOf('alice'), [], 'a method the admin does not allow is not offered');
    assert.equal(await limited.missing('bob'), 0, 'require is capped at what is available');
    await store.close();
  });
});
