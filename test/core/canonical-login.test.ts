import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { coreFixture, eventually, withDevice, type CoreFixture, type TestSession } from './core-fixture.js';
import type { LoginResult } from '../../src/core/login-types.js';

let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe('LoginAuthorizer: one canonical identity', () => {
  it('holds ALICE for alice’s phone, with the request under alice, and the tap covers every spelling', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 5000 } });
    const deviceId = await withDevice(fx);
    const a = fx.attempt('ALICE', 'right');
    const pending = fx.authorizer.authorize(a);
    const req = await eventually(async () => (await fx!.requests.listPending(deviceId))[0]);
    assert.equal(req.user, 'alice');
    assert.equal(fx.notifier.opened[0]?.user, 'alice');
    await fx.requests.decide(deviceId, req.id, 'approve');
    assert.equal((await pending).kind, 'approved');
    for (const spelling of ['alice', 'Alice', ' aLiCe ', 'ＡＬＩＣＥ']) {
      const r: LoginResult<TestSession> = await fx.timeOut(fx.authorizer.authorize(fx.attempt(spelling, 'right')));
      assert.equal(r.kind === 'approved' && r.reason, 'approval', spelling);
    }
    assert.equal(fx.notifier.opened.length, 1);
  });

  it('refuses a name that cannot be canonicalised as a failed login, without asking the upstream', async () => {
    fx = coreFixture();
    for (const typed of ['   ', 'ali\u200bce', 'a'.repeat(300), 'al\u202eice']) {
      const a = fx.attempt(typed, 'right');
      const r: LoginResult<TestSession> = await fx.timeOut(fx.authorizer.authorize(a));
      assert.equal(r.kind, 'bad-password', JSON.stringify(typed));
      assert.equal(a.verifyCalls(), 0);
    }
  });

  it('counts failed logins of every spelling against one user', async () => {
    fx = coreFixture({ limits: { failedLoginsPerUser: 3 } });
    for (const typed of ['ALICE', 'Alice', 'alice']) await fx.timeOut(fx.authorizer.authorize(fx.attempt(typed, 'wrong')));
    const a = fx.attempt('aLICE', 'right');
    const r = await fx.timeOut(fx.authorizer.authorize(a));
    assert.deepEqual(r, { kind: 'rate-limited', limit: 'user' });
    assert.equal(a.verifyCalls(), 0);
  });

  it('with stripDomain, alice@anything is alice', async () => {
    fx = coreFixture({ users: { stripDomain: true }, daemon: { holdTimeMs: 100 } });
    const deviceId = await withDevice(fx);
    const r = await fx.timeOut(fx.authorizer.authorize(fx.attempt('Alice@anything.example', 'right')));
    assert.equal(r.kind, 'pending-timeout');
    assert.equal((await fx.requests.listPending(deviceId))[0]?.user, 'alice');
  });
});
