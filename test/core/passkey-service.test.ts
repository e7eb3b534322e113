import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { PasskeyService, type RelyingParty } from '../../src/core/passkey-service.js';
import { createLogger } from '../../src/log/logger.js';
import type { Store } from '../../src/core/ports/store.js';
import { RedisStore } from '../../src/stores/redis-store.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';
import { interleave } from '../helpers/interleaving-store.js';

const RP: RelyingParty = { id: 'mail.example.com', origin: 'https://mail.example.com' };
const sid = () => randomBytes(32).toString('base64url');

/** The service with a log that the test reads back (the audit events). */
function passkeys(store: Store) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    decodeStrings: false,
    write(line: string | Buffer, _enc, done) {
      lines.push(JSON.parse(line.toString()) as Record<string, unknown>);
      done();
    },
  });
  const clock = new FakeClock();
  return { svc: new PasskeyService(store, clock, createLogger({ level: 'info', pretty: false, destination }), 'mailotp'), clock, events: () => lines.map((l) => l.event) };
}

/** Registers a new credential of `auth` for `user`; returns it. */
async function register(svc: PasskeyService, auth: SoftwareAuthenticator, user: string, name = 'Key') {
  const s = sid();
  const options = await svc.registrationOptions(user, s, RP);
  assert.equal(await svc.register(user, s, auth.create(options, RP.origin), name, RP), 'ok');
  return auth.credentials.at(-1)!;
}

function scenarios(label: string, open: () => Promise<Store>) {
  describe(`PasskeyService on ${label}, with answers from an independent software authenticator`, () => {
    it('registers, signs in (counter and last use kept), and lists with name and dates', async () => {
      const store = await open();
      const { svc, clock, events } = passkeys(store);
      const auth = new SoftwareAuthenticator();
      const cred = await register(svc, auth, 'pia', '  My\nlaptop  ');
      let [p] = await svc.list('pia');
      assert.equal(p?.name, 'My laptop');
      assert.equal(p?.createdAt, clock.now());
      assert.equal(p?.lastUsedAt, undefined);
      assert.equal(await svc.isSetUp('pia'), true);
      clock.advance(60_000);
      const s = sid();
      const options = await svc.authenticationOptions('pia', s, RP);
      assert.deepEqual(options.allowCredentials?.map((c) => c.id), [cred.id.toString('base64url')]);
      assert.equal(await svc.authenticate('pia', s, auth.get(options, RP.origin, cred), RP), 'ok');
      [p] = await svc.list('pia');
      assert.equal(p?.lastUsedAt, clock.now());
      assert.equal(p?.counter, 1);
      assert.deepEqual(events(), ['passkey.registered', 'passkey.used']);
    });

    it('a challenge works once, only for the session and user it was made for, and only for 5 minutes', async () => {
      const store = await open();
      const { svc, clock } = passkeys(store);
      const auth = new SoftwareAuthenticator();
      const cred = await register(svc, auth, 'pia');
      await register(svc, new SoftwareAuthenticator(), 'quinn');

      const s = sid();
      let options = await svc.authenticationOptions('pia', s, RP);
      const answer = auth.get(options, RP.origin, cred);
      assert.equal(await svc.authenticate('pia', s, answer, RP), 'ok');
      assert.equal(await svc.authenticate('pia', s, answer, RP), 'expired', 'the same answer again');
      // A fresh challenge does not revive an old answer.
      await svc.authenticationOptions('pia', s, RP);
      assert.equal(await svc.authenticate('pia', s, auth.get(options, RP.origin, cred), RP), 'refused');

      // Another session's challenge: this session has none.
      options = await svc.authenticationOptions('pia', s, RP);
      assert.equal(await svc.authenticate('pia', sid(), auth.get(options, RP.origin, cred), RP), 'expired');
      // Another user's challenge (quinn's session) answered with pia's passkey.
      const q = sid();
      options = await svc.authenticationOptions('quinn', q, RP);
      assert.equal(await svc.authenticate('quinn', q, auth.get(options, RP.origin, cred), RP), 'unknown');
      // Too late.
      options = await svc.authenticationOptions('pia', s, RP);
      clock.advance(5 * 60_000 + 1);
      assert.equal(await svc.authenticate('pia', s, auth.get(options, RP.origin, cred), RP), 'expired');
    });

    it('refuses a counter that went back, a foreign key under the same id, another origin or RP ID, and a credential registered twice', async () => {
      const store = await open();
      const { svc, events } = passkeys(store);
      const auth = new SoftwareAuthenticator();
      const cred = await register(svc, auth, 'pia');
      const s = sid();
      const ask = () => svc.authenticationOptions('pia', s, RP);
      assert.equal(await svc.authenticate('pia', s, auth.get(await ask(), RP.origin, cred, { signCount: 5 }), RP), 'ok');
      assert.equal(await svc.authenticate('pia', s, auth.get(await ask(), RP.origin, cred, { signCount: 5 }), RP), 'counter', 'same counter: a clone');
      assert.equal(await svc.authenticate('pia', s, auth.get(await ask(), RP.origin, cred, { signCount: 3 }), RP), 'counter');
      assert.equal((await svc.list('pia'))[0]?.counter, 5);
      assert.equal(await svc.authenticate('pia', s, auth.get(await ask(), RP.origin, cred, { signCount: 6 }), RP), 'ok');

      // Another authenticator's key pair presented under the registered credential id.
      const other = new SoftwareAuthenticator();
      other.create({ challenge: 'x', rp: { id: RP.id }, user: { id: 'x' } }, RP.origin);
      const forged = { ...other.credentials[0]!, id: cred.id };
      assert.equal(await svc.authenticate('pia', s, other.get(await ask(), RP.origin, forged, { signCount: 100 }), RP), 'refused');

      assert.equal(await svc.authenticate('pia', s, auth.get(await ask(), 'https://evil.example.com', cred), RP), 'refused');
      assert.equal(await svc.authenticate('pia', s, auth.get(await ask(), RP.origin, cred, { rpId: 'example.com' }), RP), 'refused');
      // A challenge made for one origin is not answered for another RP.
      await ask();
      assert.equal(await svc.authenticate('pia', s, auth.get({ challenge: 'x', rpId: 'other.example' }, 'https://other.example', cred), { id: 'other.example', origin: 'https://other.example' }), 'expired');

      // The same credential registered to a second account.
      const q = sid();
      const options = await svc.registrationOptions('quinn', q, RP);
      assert.equal(await svc.register('quinn', q, auth.create(options, RP.origin, { credential: cred }), 'Copy', RP), 'exists');
      assert.equal(await svc.isSetUp('quinn'), false);
      assert.ok(events().includes('passkey.refused'));
    });

    it('a removed passkey no longer signs in; reset removes them all and frees their ids', async () => {
      const store = await open();
      const { svc, events } = passkeys(store);
      const auth = new SoftwareAuthenticator();
      const a = await register(svc, auth, 'pia', 'A');
      const b = await register(svc, auth, 'pia', 'B');
      assert.deepEqual((await svc.list('pia')).map((p) => p.name), ['A', 'B']);
      assert.equal(await svc.remove('pia', 'nope'), false);
      assert.equal(await svc.remove('quinn', a.id.toString('base64url')), false, "another user's passkey");
      assert.equal(await svc.remove('pia', a.id.toString('base64url')), true);
      const s = sid();
      const options = await svc.authenticationOptions('pia', s, RP);
      assert.deepEqual(options.allowCredentials?.map((c) => c.id), [b.id.toString('base64url')]);
      assert.equal(await svc.authenticate('pia', s, auth.get(options, RP.origin, a), RP), 'unknown');
      assert.ok(events().includes('passkey.removed'));
      await svc.reset('pia');
      assert.equal(await svc.isSetUp('pia'), false);
      // Its id is free again: the same authenticator may register it for this user anew.
      const q = sid();
      const reg = auth.create(await svc.registrationOptions('pia', q, RP), RP.origin);
      assert.equal(await svc.register('pia', q, reg, 'C', RP), 'ok');
    });

    it('a passkey removed while a sign-in with it is being checked stays removed; two registrations at once both stay', async () => {
      const store = await open();
      const { svc } = passkeys(store);
      const auth = new SoftwareAuthenticator();
      const a = await register(svc, auth, 'ria', 'A');
      await register(svc, auth, 'ria', 'B');
      const idA = a.id.toString('base64url');
      // The sign-in has read the list and checked the signature when the removal lands, before it writes the counter.
      const racing = passkeys(interleave(store, 'passkeys:ria', () => svc.remove('ria', idA))).svc;
      const s = sid();
      const options = await racing.authenticationOptions('ria', s, RP);
      assert.equal(await racing.authenticate('ria', s, auth.get(options, RP.origin, a), RP), 'unknown');
      assert.deepEqual((await svc.list('ria')).map((p) => p.name), ['B']);
      const s2 = sid();
      assert.equal(await svc.authenticate('ria', s2, auth.get(await svc.authenticationOptions('ria', s2, RP), RP.origin, a), RP), 'unknown');

      // Registration C writes its list while registration D's lands first: both are kept.
      const [sc, sd] = [sid(), sid()];
      const [oc, od] = [await svc.registrationOptions('ria', sc, RP), await svc.registrationOptions('ria', sd, RP)];
      const [rc, rd] = [auth.create(oc, RP.origin), auth.create(od, RP.origin)];
      const racingReg = passkeys(interleave(store, 'passkeys:ria', () => svc.register('ria', sd, rd, 'D', RP))).svc;
      assert.equal(await racingReg.register('ria', sc, rc, 'C', RP), 'ok');
      assert.deepEqual((await svc.list('ria')).map((p) => p.name).sort(), ['B', 'C', 'D']);
    });
  });
}

const stores: Store[] = [];
let redis: RedisServerHandle | undefined;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  for (const s of stores) await s.close();
  await redis?.stop();
});

scenarios('SQLite', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  stores.push(s);
  return s;
});
scenarios('Redis', async () => {
  const s = new RedisStore({ url: redis!.url, keyPrefix: `pk-${randomBytes(4).toString('hex')}:` });
  stores.push(s);
  return s;
});
