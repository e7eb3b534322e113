import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imapLoginReply, isFailedLogin, safeReplyText } from '../../../src/protocols/imap/imap-replies.js';

const session = (loginResponseText: string) => ({ loginResponseText, close() {} });

describe('imap login replies', () => {
  it('maps every LoginResult kind', () => {
    assert.equal(imapLoginReply({ kind: 'approved', session: session('[CAPABILITY IMAP4rev1] Logged in'), reason: 'tap' }), 'OK [CAPABILITY IMAP4rev1] Logged in');
    assert.equal(imapLoginReply({ kind: 'approved', session: session(' \r\n'), reason: 'tap' }), 'OK Logged in');
    assert.equal(imapLoginReply({ kind: 'pending-timeout', requestId: 'r' }), 'NO [UNAVAILABLE] Approve this connection on your phone, then retry.');
    assert.equal(imapLoginReply({ kind: 'denied', requestId: 'r' }), 'NO [AUTHENTICATIONFAILED] Authentication failed.');
    assert.equal(imapLoginReply({ kind: 'bad-password', reply: '[AUTHENTICATIONFAILED] Bad.' }), 'NO [AUTHENTICATIONFAILED] Bad.');
    assert.equal(imapLoginReply({ kind: 'bad-password', reply: '\r\n' }), 'NO [AUTHENTICATIONFAILED] Authentication failed.');
    assert.equal(imapLoginReply({ kind: 'bad-password' }), 'NO [AUTHENTICATIONFAILED] Authentication failed.');
    assert.equal(
      imapLoginReply({ kind: 'no-device' }),
      'NO [CONTACTADMIN] Two-factor approval is required but no device is bound; contact your administrator.',
    );
    assert.equal(imapLoginReply({ kind: 'rate-limited', limit: 'ip' }), 'NO [UNAVAILABLE] Too many attempts, try again later.');
    assert.equal(imapLoginReply({ kind: 'unavailable', reason: 'x' }), 'NO [UNAVAILABLE] Temporary failure, please retry.');
    assert.equal(imapLoginReply({ kind: 'aborted' }), null);
  });

  it('makes upstream text one safe line', () => {
    assert.equal(safeReplyText('a\r\nb\0c\td'), 'a b c d');
    assert.equal(safeReplyText('x'.repeat(5000)).length, 1024);
    const caps = `[CAPABILITY IMAP4rev1 ${'X-LONG-EXTENSION '.repeat(200)}] Logged in`;
    assert.equal(imapLoginReply({ kind: 'approved', session: session(caps), reason: 'tap' }), `OK ${caps}`);
  });

  it('counts only authentication failures', () => {
    assert.deepEqual(
      (['approved', 'pending-timeout', 'denied', 'bad-password', 'no-device', 'rate-limited', 'unavailable', 'aborted'] as const).filter(isFailedLogin),
      ['denied', 'bad-password', 'no-device', 'rate-limited'],
    );
  });
});
