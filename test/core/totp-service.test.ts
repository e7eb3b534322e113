import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { SecretBox } from '../../src/core/secret-box.js';
import { TotpService } from '../../src/core/totp-service.js';
import { silentLogger } from '../../src/log/logger.js';
import { RedisStore } from '../../src/stores/redis-store.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import type { Store } from '../../src/core/ports/store.js';
import { base32Decode, totpCode } from '../helpers/rfc6238.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';

const KEY = Buffer.alloc(32, 7);
const T0 = Date.UTC(2026, 0, 1, 12, 0, 15);

function service(store: Store, clock: FakeClock, key = KEY): TotpService {
  return new TotpService(store, clock, new SecretBox(key), silentLogger(), 'mailotp');
}

const codeAt = (secret: string, ms: number) => totpCode(base32Decode(secret), Math.floor(ms / 1000));

describe('the test\'s own RFC 6238 implementation', () => {
  it('gives the RFC 6238 appendix B SHA-1 test vectors', () => {
    const key = Buffer.from('12345678901234567890', 'ascii');
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [t, code] of vectors) assert.equal(totpCode(key, t, { digits: 8 }), code, `T=${t}`);
  });
});

describe('TotpService (fake clock, SQLite)', () => {
  it('activates only with a correct code, then verifies with one step of drift and refuses a replay', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock(T0);
    const totp = service(store, clock);
    const { secret, uri } = await totp.begin('alice');
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    assert.match(uri, /^otpauth:\/\/totp\/mailotp:alice\?secret=[A-Z2-7]+&issuer=mailotp$/);
    assert.equal(await totp.isSetUp('alice'), false);
    assert.equal(await totp.activate('alice', '000000' === codeAt(secret, T0) ? '111111' : '000000'), 'wrong');
    assert.equal(await totp.activate('alice', 'abc'), 'wrong');
    assert.equal(await totp.activate('alice', codeAt(secret, T0)), 'ok');
    assert.equal(await totp.isSetUp('alice'), true);
    assert.equal(await totp.pending('alice'), null);

    clock.advance(60_000);
    // The previous step and the next one count; two steps away does not.
    assert.equal(await totp.verify('alice', codeAt(secret, clock.now() - 30_000)), 'ok');
    assert.equal(await totp.verify('alice', codeAt(secret, clock.now() + 30_000)), 'ok');
    assert.equal(await totp.verify('alice', codeAt(secret, clock.now() - 60_000)), 'wrong');
    assert.equal(await totp.verify('alice', codeAt(secret, clock.now() + 60_000)), 'wrong');
    const now = codeAt(secret, clock.now());
    assert.equal(await totp.verify('alice', now.slice(0, 3) + ' ' + now.slice(3)), 'ok');
    assert.equal(await totp.verify('alice', now), 'replayed');
    // Still refused when the clock moved on within the drift window.
    clock.advance(30_000);
    assert.equal(await totp.verify('alice', now), 'replayed');
    assert.equal(await totp.verify('bob', now), 'not-set-up');
    await store.close();
  });

  it('a new key replaces the old one at once, and reset removes it', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock(T0);
    const totp = service(store, clock);
    const first = (await totp.begin('alice')).secret;
    assert.equal(await totp.activate('alice', codeAt(first, T0)), 'ok');
    clock.advance(90_000);
    const second = (await totp.begin('alice')).secret;
    assert.notEqual(second, first);
    assert.equal(await totp.isSetUp('alice'), false);
    assert.equal(await totp.verify('alice', codeAt(first, clock.now())), 'not-set-up');
    assert.equal(await totp.activate('alice', codeAt(second, clock.now())), 'ok');
    clock.advance(90_000);
    assert.equal(await totp.verify('alice', codeAt(first, clock.now())), 'wrong');
    await totp.reset('alice');
    assert.equal(await totp.isSetUp('alice'), false);
    await store.close();
  });

  it('keeps the key encrypted, bound to the user: unreadable under another user or another master key', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock(T0);
    const totp = service(store, clock);
    const { secret } = await totp.begin('alice');
    await totp.activate('alice', codeAt(secret, T0));
    const sealed = await store.getValue('totp:alice', clock.now());
    assert.ok(sealed && !sealed.includes(secret) && !Buffer.from(sealed.split('.')[2] ?? '', 'base64url').toString('latin1').includes(secret));
    // Copied onto bob's record, it does not open for bob.
    await store.setValue('totp:bob', sealed, 60_000, clock.now());
    clock.advance(60_000);
    assert.equal(await totp.verify('bob', codeAt(secret, clock.now())), 'not-set-up');
    // Another master key cannot read it either.
    assert.equal(await service(store, clock, Buffer.alloc(32, 8)).verify('alice', codeAt(secret, clock.now())), 'not-set-up');
    assert.equal(await totp.verify('alice', codeAt(secret, clock.now())), 'ok');
    await store.close();
  });
});

describe('TotpService on two instances sharing one Redis', () => {
  let server: RedisServerHandle;
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    await server.stop();
  });

  it('a code accepted by one instance is refused by the other', async () => {
    const keyPrefix = `mailotp-totp-${process.pid}:`;
    const a = new RedisStore({ url: server.url, keyPrefix });
    const b = new RedisStore({ url: server.url, keyPrefix });
    const clock = new FakeClock(T0);
    const one = service(a, clock);
    const two = service(b, clock);
    const { secret } = await one.begin('alice');
    assert.equal(await two.activate('alice', codeAt(secret, T0)), 'ok');
    clock.advance(30_000);
    const code = codeAt(secret, clock.now());
    const both = await Promise.all([one.verify('alice', code), two.verify('alice', code)]);
    assert.deepEqual([...both].sort(), ['ok', 'replayed']);
    assert.equal(await one.verify('alice', code), 'replayed');
    await a.close();
    await b.close();
  });
});
