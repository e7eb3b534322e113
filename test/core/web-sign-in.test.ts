import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { VerifyResult } from '../../src/core/login-types.js';
import type { DeviceRecord } from '../../src/core/types.js';
import { coreFixture, TestSession, type CoreFixture } from './core-fixture.js';

let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

async function device(f: CoreFixture, user = 'alice'): Promise<DeviceRecord> {
  const bound = await f.devices.bind(user, 'Phone', false);
  assert.equal(bound.status, 'bound');
  return bound.device;
}

describe('RequestService.openLogin (web sign-in with number matching)', () => {
  it('opens a login request with three distinct choices, one of them the number to show, pushed like any request', async () => {
    const f = (fx = coreFixture());
    const d = await device(f);
    const { request, created } = await f.requests.openLogin({ user: 'alice', device: d, clientIp: '192.0.2.1', clientName: 'Chrome on Linux' });
    assert.equal(created, true);
    assert.deepEqual([request.type, request.protocol, request.status], ['login', 'web', 'pending']);
    assert.equal(new Set(request.choices).size, 3);
    assert.ok(request.choices?.every((n) => Number.isInteger(n) && n >= 10 && n <= 99));
    assert.ok(request.choices?.includes(request.matchNumber!));
    assert.deepEqual(f.notifier.opened.map((r) => r.id), [request.id]);
  });

  it('approves with the right number and writes no mail approval; a wrong number denies', async () => {
    const f = (fx = coreFixture());
    const d = await device(f);
    const { request } = await f.requests.openLogin({ user: 'alice', device: d, clientIp: '192.0.2.1' });
    assert.deepEqual(await f.requests.decide(d.deviceId, request.id, 'approve'), { status: 'wrong-number' }, 'no number: the app did not show the choices');
    const right = await f.requests.decide(d.deviceId, request.id, 'approve', request.matchNumber);
    assert.equal(right.status, 'approved');
    assert.equal(await f.approvals.find('alice', '192.0.2.1'), null);
    assert.ok((await f.store.getDevice(d.deviceId))?.lastUsedAt, 'the device was last used now');

    const second = (await f.requests.openLogin({ user: 'alice', device: d, clientIp: '192.0.2.2' })).request;
    const wrong = second.choices!.find((n) => n !== second.matchNumber)!;
    const denied = await f.requests.decide(d.deviceId, second.id, 'approve', wrong);
    assert.equal(denied.status, 'denied');
    assert.equal((await f.requests.get(second.id))?.status, 'denied');
  });

  it('lets the sign-in page withdraw its own pending login request, and nothing else', async () => {
    const f = (fx = coreFixture());
    const d = await device(f);
    const login = (await f.requests.openLogin({ user: 'alice', device: d, clientIp: '192.0.2.1' })).request;
    const mail = (await f.requests.openConnection({ user: 'alice', device: d, protocol: 'imap', clientIp: '192.0.2.1' })).request;
    assert.equal(await f.requests.withdrawLogin(login.id, 'bob'), false);
    assert.equal(await f.requests.withdrawLogin(mail.id, 'alice'), false);
    assert.equal(await f.requests.withdrawLogin(login.id, 'alice'), true);
    assert.equal(await f.requests.withdrawLogin(login.id, 'alice'), false);
    assert.equal((await f.requests.get(login.id))?.status, 'denied');
    assert.equal((await f.requests.decide(d.deviceId, login.id, 'approve', login.matchNumber)).status, 'already-decided');
    assert.deepEqual((await f.requests.listPending(d.deviceId)).map((r) => r.id), [mail.id]);
  });

  it('keeps the decided and expired requests in the recent list, newest first', async () => {
    const f = (fx = coreFixture());
    const d = await device(f);
    const a = (await f.requests.openLogin({ user: 'alice', device: d, clientIp: '192.0.2.1' })).request;
    await f.requests.decide(d.deviceId, a.id, 'deny');
    const b = (await f.requests.openConnection({ user: 'alice', device: d, protocol: 'imap', clientIp: '192.0.2.9', clientName: 'Thunderbird' })).request;
    await f.requests.decide(d.deviceId, b.id, 'approve');
    const c = (await f.requests.openLogin({ user: 'alice', device: d, clientIp: '192.0.2.3' })).request;
    f.clock.advance(c.expiresAt - f.clock.now());
    await f.requests.sweepExpired();
    const recent = await f.requests.recent('alice');
    assert.deepEqual(
      recent.map((r) => [r.id, r.type, r.status]),
      [
        [c.id, 'login', 'expired'],
        [b.id, 'connection', 'approved'],
        [a.id, 'login', 'denied'],
      ],
    );
    assert.equal(recent[1]?.clientName, 'Thunderbird');
    assert.deepEqual(await f.requests.recent('bob'), []);
  });
});

describe('LoginAuthorizer.checkPassword (the web sign-in password step)', () => {
  const check = (f: CoreFixture, password: string, session = new TestSession(), clientIp = '192.0.2.1', user = 'alice') =>
    f.authorizer.checkPassword({
      user,
      clientIp,
      verify: async (): Promise<VerifyResult<TestSession>> => (password === 'right' ? { kind: 'ok', session } : { kind: 'bad-password' }),
    });

  it('answers ok and closes the upstream session; a wrong password is counted with the mail logins', async () => {
    const f = (fx = coreFixture({ limits: { failedLoginsPerUser: 3 } }));
    const session = new TestSession();
    assert.deepEqual(await check(f, 'right', session), { kind: 'ok', user: 'alice' });
    assert.equal(session.closed, 1);
    for (let i = 0; i < 3; i++) assert.deepEqual(await check(f, 'wrong'), { kind: 'bad-password' });
    assert.deepEqual(await check(f, 'right'), { kind: 'rate-limited', limit: 'user' });
    // The same counter holds a mail login back too.
    const mail = await f.authorizer.authorize(f.attempt('alice', 'right'));
    assert.equal(mail.kind, 'rate-limited');
  });

  it('answers with the canonical name, counts every spelling as one user, and refuses a name that has none', async () => {
    const f = (fx = coreFixture({ limits: { failedLoginsPerUser: 2 } }));
    assert.deepEqual(await check(f, 'right', new TestSession(), '192.0.2.1', ' ALICE '), { kind: 'ok', user: 'alice' });
    assert.deepEqual(await check(f, 'wrong', undefined, '192.0.2.1', 'Alice'), { kind: 'bad-password' });
    assert.deepEqual(await check(f, 'wrong', undefined, '192.0.2.1', 'aLiCe'), { kind: 'bad-password' });
    assert.deepEqual(await check(f, 'right', new TestSession(), '192.0.2.1', 'ALICE'), { kind: 'rate-limited', limit: 'user' });
    let asked = false;
    const r = await f.authorizer.checkPassword({
      user: 'ali\u202ece',
      clientIp: '192.0.2.2',
      verify: async (): Promise<VerifyResult<TestSession>> => {
        asked = true;
        return { kind: 'ok', session: new TestSession() };
      },
    });
    assert.deepEqual(r, { kind: 'bad-password' });
    assert.equal(asked, false, 'a name that cannot be canonicalised never reaches the upstream');
  });

  it('is unavailable, never ok, when the upstream cannot answer', async () => {
    const f = (fx = coreFixture());
    const r = await f.authorizer.checkPassword({ user: 'alice', clientIp: '192.0.2.1', verify: async () => ({ kind: 'unavailable', reason: 'connect refused' }) });
    assert.equal(r.kind, 'unavailable');
    const thrown = await f.authorizer.checkPassword({
      user: 'alice',
      clientIp: '192.0.2.1',
      verify: async () => {
        throw new Error('boom');
      },
    });
    assert.equal(thrown.kind, 'unavailable');
  });
});
