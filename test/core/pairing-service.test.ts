import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { PairingService, PAIRING_TTL_MS } from '../../src/core/pairing-service.js';
import type { DeviceRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Notifier } from '../../src/core/ports/notifier.js';
import { coreFixture, type CoreFixture } from './core-fixture.js';

class RemovedNotifier implements Notifier {
  readonly name = 'removed';
  removed: DeviceRecord[] = [];
  async requestOpened(): Promise<void> {}
  async requestSettled(): Promise<void> {}
  async deviceRemoved(d: DeviceRecord): Promise<void> {
    this.removed.push(d);
  }
}

let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

function setup(): { f: CoreFixture; pairing: PairingService; notifier: RemovedNotifier } {
  const f = coreFixture();
  fx = f;
  const notifier = new RemovedNotifier();
  return { f, pairing: new PairingService(f.store, f.clock, f.devices, [notifier], silentLogger()), notifier };
}

describe('PairingService: code flow', () => {
  it('binds by the typed code (spaces allowed); the waiting phone gets a working token exactly once', async () => {
    const { f, pairing } = setup();
    const { code, claim } = await pairing.createCode('Pixel 8');
    assert.match(code, /^\d{9}$/);
    assert.equal((await pairing.claimStatus(claim)).status, 'waiting');
    const typed = `${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`;
    const bound = await pairing.bindByCode('alice', typed);
    assert.equal(bound.status, 'bound');
    const got = await pairing.claimStatus(claim);
    assert.equal(got.status, 'bound');
    if (got.status !== 'bound') return;
    assert.equal(got.user, 'alice');
    const device = await f.devices.authenticate(got.token);
    assert.equal(device?.name, 'Pixel 8');
    assert.equal(device?.user, 'alice');
    assert.equal((await pairing.claimStatus(claim)).status, 'not-found', 'handed out once');
    assert.equal((await pairing.bindByCode('bob', code)).status, 'not-found', 'the code is used up');
  });

  it('keeps no usable token in the store: the sealed copy needs the claim', async () => {
    const { f, pairing } = setup();
    const { code, claim } = await pairing.createCode();
    await pairing.bindByCode('alice', code);
    const other = await pairing.claimStatus(claim.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')));
    assert.equal(other.status, 'not-found');
    const device = await f.store.getDeviceByUser('alice');
    assert.equal(device?.name, 'Phone', 'a phone that gave no name gets the default');
  });

  it('refuses a second device, unknown and expired codes, and limits guesses per user', async () => {
    const { f, pairing } = setup();
    const first = await pairing.createCode();
    assert.equal((await pairing.bindByCode('alice', first.code)).status, 'bound');
    const second = await pairing.createCode();
    assert.equal((await pairing.bindByCode('alice', second.code)).status, 'exists');
    assert.equal((await pairing.claimStatus(second.claim)).status, 'waiting', 'the refused code is not used up');

    const late = await pairing.createCode();
    f.clock.advance(PAIRING_TTL_MS);
    assert.equal((await pairing.bindByCode('bob', late.code)).status, 'not-found');
    assert.equal((await pairing.claimStatus(late.claim)).status, 'not-found');

    for (let i = 0; i < 10; i++) assert.equal((await pairing.bindByCode('carol', '12345678x')).status, 'not-found');
    const valid = await pairing.createCode();
    assert.equal((await pairing.bindByCode('carol', valid.code)).status, 'rate-limited');
  });
});

describe('PairingService: link flow', () => {
  it('binds when the phone picks the desktop number; the link is single-use', async () => {
    const { pairing } = setup();
    const link = await pairing.startLink('alice');
    const seen = await pairing.linkChoices(link.secret);
    assert.equal(seen?.user, 'alice');
    assert.equal(new Set(seen?.choices).size, 3);
    assert.ok(seen?.choices.every((n) => n >= 10 && n <= 99));
    assert.ok(seen?.choices.includes(link.number));
    assert.equal(await pairing.linkState(link.linkId), 'waiting');
    const answer = await pairing.answerLink(link.secret, link.number, 'iPhone');
    assert.equal(answer.status, 'bound');
    assert.equal(await pairing.linkState(link.linkId), 'bound');
    assert.equal((await pairing.answerLink(link.secret, link.number)).status, 'not-found');
    assert.equal(await pairing.linkChoices(link.secret), null);
  });

  it('voids the pairing on a wrong number', async () => {
    const { f, pairing } = setup();
    const link = await pairing.startLink('alice');
    const wrong = (await pairing.linkChoices(link.secret))!.choices.find((n) => n !== link.number)!;
    assert.equal((await pairing.answerLink(link.secret, wrong)).status, 'wrong-number');
    assert.equal(await pairing.linkState(link.linkId), 'wrong-number');
    assert.equal((await pairing.answerLink(link.secret, link.number)).status, 'not-found');
    assert.equal(await f.store.getDeviceByUser('alice'), null);
  });

  it('expires after ten minutes', async () => {
    const { f, pairing } = setup();
    const link = await pairing.startLink('alice');
    f.clock.advance(PAIRING_TTL_MS);
    assert.equal(await pairing.linkChoices(link.secret), null);
    assert.equal((await pairing.answerLink(link.secret, link.number)).status, 'not-found');
    assert.equal(await pairing.linkState(link.linkId), 'expired');
  });
});

describe('PairingService: clear', () => {
  it('removes the device and tells the old one through the notifiers', async () => {
    const { f, pairing, notifier } = setup();
    const bound = await f.devices.bind('alice', 'Old phone', false);
    assert.equal(bound.status, 'bound');
    const removed = await pairing.clear('alice');
    assert.equal(removed?.name, 'Old phone');
    assert.deepEqual(notifier.removed.map((d) => d.name), ['Old phone']);
    assert.equal(await pairing.clear('alice'), null);
  });
});
