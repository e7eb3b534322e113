import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoginResult, VerifiedUpstream } from '../../../src/core/login-types.js';
import { pop3LoginReply } from '../../../src/protocols/pop3/pop3-replies.js';

type S = VerifiedUpstream & { loginResponseText: string };
const session = (loginResponseText: string): S => ({ loginResponseText, close: () => undefined });
const reply = (r: LoginResult<S>) => pop3LoginReply(r);

describe('pop3 login replies', () => {
  it('answers every kind of result', () => {
    // Each LoginResult kind once; the compiler checks the switch, this checks the words.
    const table: [LoginResult<S>, string | null][] = [
      [{ kind: 'approved', session: session('Logged in.'), reason: 'tap' }, '+OK Logged in.'],
      [{ kind: 'pending-timeout', requestId: 'r1' }, '-ERR [SYS/TEMP] Still waiting for approval: approve this connection on your phone, then retry.'],
      [{ kind: 'denied', requestId: 'r1' }, '-ERR [AUTH] Authentication failed.'],
      [{ kind: 'bad-password' }, '-ERR [AUTH] Authentication failed.'],
      [{ kind: 'no-device' }, '-ERR [AUTH] Two-factor approval is required but no device is bound; contact your administrator.'],
      [{ kind: 'rate-limited', limit: 'ip' }, '-ERR [SYS/TEMP] Too many attempts, please wait and try again later.'],
      [{ kind: 'unavailable', reason: 'store' }, '-ERR [SYS/TEMP] Temporary failure, please wait and retry.'],
      [{ kind: 'aborted' }, null],
    ];
    for (const [result, expected] of table) assert.equal(reply(result), expected, result.kind);
  });

  it('passes the upstream +OK text on, or says Logged in. when it gave none', () => {
    assert.equal(reply({ kind: 'approved', session: session('Mailbox locked and ready'), reason: 'approval' }), '+OK Mailbox locked and ready');
    assert.equal(reply({ kind: 'approved', session: session(''), reason: 'not-required' }), '+OK Logged in.');
  });

  it("gives a wrong password the upstream's words, always under [AUTH]", () => {
    assert.equal(reply({ kind: 'bad-password', reply: '[AUTH] Authentication failed.' }), '-ERR [AUTH] Authentication failed.');
    assert.equal(reply({ kind: 'bad-password', reply: 'Invalid login' }), '-ERR [AUTH] Invalid login');
    assert.equal(reply({ kind: 'bad-password', reply: '[FOO] odd' }), '-ERR [AUTH] odd');
    assert.equal(reply({ kind: 'bad-password', reply: '' }), '-ERR [AUTH] Authentication failed.');
  });

  it("passes an upstream temporary refusal on as it said it ([IN-USE], [LOGIN-DELAY])", () => {
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: '[IN-USE] Mailbox is locked by another session' }), '-ERR [IN-USE] Mailbox is locked by another session');
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: '[LOGIN-DELAY] Wait 15 minutes' }), '-ERR [LOGIN-DELAY] Wait 15 minutes');
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: 'no code' }), '-ERR [SYS/TEMP] no code (please wait and retry)');
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: '[SYS/TEMP] Temporary authentication failure.' }), '-ERR [SYS/TEMP] Temporary authentication failure. (please wait and retry)');
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: '[SYS/TEMP] Server busy, wait a moment' }), '-ERR [SYS/TEMP] Server busy, wait a moment');
  });

  it('words every temporary refusal so that fetchmail does not read it as a wrong password', () => {
    // fetchmail 6.4 pop3.c pop3_ok(): an -ERR to PASS is "lock busy" (temporary) when the text after
    // "-ERR" contains one of these (case-sensitive strstr), "server busy" for service+unavailable,
    // and an authentication failure otherwise. Re-implemented here as fetchmail does it.
    const fetchmailClass = (line: string): 'lockbusy' | 'servbusy' | 'authfail' => {
      const text = line.slice('-ERR'.length);
      if (['lock', 'Lock', 'LOCK', 'wait', '[IN-USE]', '[LOGIN-DELAY]'].some((w) => text.includes(w))) return 'lockbusy';
      if ((text.includes('Service') || text.includes('service')) && text.includes('unavailable')) return 'servbusy';
      return 'authfail';
    };
    const temporary: LoginResult<S>[] = [
      { kind: 'pending-timeout', requestId: 'r1' },
      { kind: 'rate-limited', limit: 'user' },
      { kind: 'rate-limited', limit: 'ip' },
      { kind: 'rate-limited', limit: 'push' },
      { kind: 'unavailable', reason: 'store' },
      { kind: 'unavailable', reason: 'x', reply: 'no code' },
      { kind: 'unavailable', reason: 'x', reply: '[SYS/TEMP] Temporary authentication failure.' },
      { kind: 'unavailable', reason: 'x', reply: '[IN-USE] Mailbox is locked by another session' },
    ];
    for (const r of temporary) {
      const line = reply(r) ?? '';
      assert.match(line, /^-ERR \[(SYS\/TEMP|IN-USE|LOGIN-DELAY)\] /, `${r.kind}: an RFC 3206/2449 code first`);
      assert.equal(fetchmailClass(line), 'lockbusy', `${r.kind}: ${line}`);
    }
    assert.equal(fetchmailClass(reply({ kind: 'bad-password' }) ?? ''), 'authfail');
    assert.equal(fetchmailClass(reply({ kind: 'denied', requestId: 'r' }) ?? ''), 'authfail');
  });

  it('keeps upstream text on one line (no CR/LF/NUL injection into the reply)', () => {
    assert.equal(reply({ kind: 'bad-password', reply: 'bad\r\n+OK Logged in.' }), '-ERR [AUTH] bad +OK Logged in.');
    assert.equal(reply({ kind: 'unavailable', reason: 'x', reply: '[IN-USE] a\r\n+OK\0' }), '-ERR [IN-USE] a +OK');
    assert.equal(reply({ kind: 'approved', session: session('ok\r\n-ERR x'), reason: 'tap' }), '+OK ok -ERR x');
  });
});
