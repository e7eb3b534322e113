import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HeldLogins } from '../../src/core/held-logins.js';
import type { LoginAttempt, VerifiedUpstream } from '../../src/core/login-types.js';

function attempt(user: string, signal?: AbortSignal): LoginAttempt<VerifiedUpstream> {
  return { protocol: 'imap', user, password: 'pw', clientIp: '192.0.2.7', verify: () => Promise.resolve({ kind: 'bad-password' }), signal };
}

describe('HeldLogins', () => {
  it('ends the guarded wait when the client leaves, with the reason the client gave', () => {
    const held = new HeldLogins(2);
    const client = new AbortController();
    const guard = held.guard(attempt('alice', client.signal));
    guard.attempt.onHold!();
    assert.equal(guard.attempt.signal!.aborted, false);
    client.abort(new Error('client left'));
    assert.equal(guard.attempt.signal!.aborted, true);
    assert.equal((guard.attempt.signal!.reason as Error).message, 'client left');
    assert.equal(guard.refused(), false);
    guard.release();
    assert.equal(held.count('alice'), 0);
  });

  it('starts aborted when the client had already left', () => {
    const client = new AbortController();
    client.abort();
    assert.equal(new HeldLogins(1).guard(attempt('alice', client.signal)).attempt.signal!.aborted, true);
  });

  it('ends a wait past the cap at once and leaves the other holds alone; a released guard no longer listens', () => {
    const held = new HeldLogins(1);
    const first = new AbortController();
    const a = held.guard(attempt('alice', first.signal));
    a.attempt.onHold!();
    const b = held.guard(attempt('alice', new AbortController().signal));
    b.attempt.onHold!();
    assert.equal(b.refused(), true);
    assert.equal(b.attempt.signal!.aborted, true);
    assert.equal(a.attempt.signal!.aborted, false);
    assert.equal(held.count('alice'), 1);
    a.release();
    a.release();
    assert.equal(held.count('alice'), 0);
    // After release the client's signal is not forwarded any more (the listener is gone).
    first.abort();
    assert.equal(a.attempt.signal!.aborted, false);
  });
});
