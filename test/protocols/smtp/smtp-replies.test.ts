import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoginResult, VerifiedUpstream } from '../../../src/core/login-types.js';
import { isFailedLogin, replyTextOf, safeReplyText, smtpLoginReply } from '../../../src/protocols/smtp/smtp-replies.js';

const session: VerifiedUpstream = { close: () => undefined };
const reply = (r: LoginResult<VerifiedUpstream>) => smtpLoginReply(r);

describe('smtp login replies', () => {
  it('maps every kind of result to its reply', () => {
    assert.equal(reply({ kind: 'approved', session, reason: 'tap' }), '235 2.7.0 Authentication successful');
    assert.equal(reply({ kind: 'pending-timeout', requestId: 'r' }), '454 4.7.0 Approve this connection on your phone, then retry.');
    assert.equal(reply({ kind: 'denied', requestId: 'r' }), '535 5.7.8 Authentication credentials invalid');
    assert.equal(reply({ kind: 'bad-password' }), '535 5.7.8 Authentication credentials invalid');
    assert.equal(reply({ kind: 'no-device' }), '535 5.7.8 Two-factor approval is required but no device is bound; contact your administrator.');
    assert.equal(reply({ kind: 'rate-limited', limit: 'ip' }), '454 4.7.0 Too many attempts, try again later.');
    assert.equal(reply({ kind: 'unavailable', reason: 'store' }), '454 4.7.0 Temporary failure, please retry.');
    assert.equal(reply({ kind: 'aborted' }), null);
  });

  it("passes the upstream's words under the standard codes", () => {
    assert.equal(reply({ kind: 'bad-password', reply: '535 5.7.8 Authentication failed' }), '535 5.7.8 Authentication failed');
    assert.equal(reply({ kind: 'bad-password', reply: '554 5.7.1 Account disabled' }), '535 5.7.8 Account disabled');
    assert.equal(reply({ kind: 'bad-password', reply: '535 Nope' }), '535 5.7.8 Nope');
    assert.equal(reply({ kind: 'bad-password', reply: '535 5.7.8 ' }), '535 5.7.8 Authentication credentials invalid');
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: '454 4.7.0 Try later' }), '454 4.7.0 Try later');
  });

  it('never lets upstream text break the reply line', () => {
    const hostile = '535 5.7.8 bad\r\n250 2.0.0 OK\r\n235 2.7.0 Authentication successful\0\x1b[2J';
    const line = reply({ kind: 'bad-password', reply: hostile })!;
    assert.match(line, /^535 5\.7\.8 [\x20-\x7e]+$/);
    assert.doesNotMatch(line, /[\r\n\0]/);
    assert.equal(reply({ kind: 'bad-password', reply: 'é'.repeat(1000) }), '535 5.7.8 Authentication credentials invalid');
    assert.ok(reply({ kind: 'bad-password', reply: `535 ${'x'.repeat(5000)}` })!.length <= 410);
    assert.equal(safeReplyText('a\tb\u2028c   d'), 'a b c d');
    assert.equal(replyTextOf('250-5.7.8x'), '5.7.8x');
  });

  it('counts only refusals that are about the user as failed logins', () => {
    const kinds: LoginResult<VerifiedUpstream>['kind'][] = ['approved', 'pending-timeout', 'denied', 'bad-password', 'no-device', 'rate-limited', 'unavailable', 'aborted'];
    assert.deepEqual(kinds.filter(isFailedLogin), ['denied', 'bad-password', 'no-device', 'rate-limited']);
  });
});
