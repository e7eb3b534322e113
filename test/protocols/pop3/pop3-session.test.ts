import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../../src/core/clock.js';
import { upgradeClient, type LineClient } from '../../helpers/line-client.js';
import { b64, type Behaviour, type Refusal, SESSION_SUITE } from '../../helpers/session-harness.js';
import { logins, TLS_CAPS, withServer } from './pop3-test-kit.js';

/** Sends lines and reads one answer line per command. */
const ask = (c: LineClient, ...lines: string[]): Promise<string[]> => c.ask(...lines);

describe('pop3 session: before login', SESSION_SUITE, () => {
  it('answers CAPA with the filtered list and AUTH alone with the mechanisms', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      c.write('CAPA\r\n');
      assert.deepEqual(await c.until('.'), ['+OK Capability list follows', ...TLS_CAPS, '.']);
      c.write('AUTH\r\n');
      assert.deepEqual(await c.until('.'), ['+OK', 'PLAIN', 'LOGIN', '.']);
    });
  });

  it('refuses transaction commands, unknown ones, a client XCLIENT and STLS on a TLS port', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'USER', 'USER ', 'NOOP', 'STAT', 'RETR 1', 'XCLIENT ADDR=1.2.3.4', 'APOP alice 0123', 'STLS', '', 'PASS x'), [
        '-ERR Invalid arguments.',
        '-ERR Invalid arguments.',
        '-ERR Command not valid before login.',
        '-ERR Command not valid before login.',
        '-ERR Command not valid before login.',
        '-ERR Unknown command.',
        '-ERR Unknown command.',
        '-ERR STLS not available.',
        '-ERR Unknown command.',
        '-ERR No username given.',
      ]);
      assert.deepEqual(await ask(c, 'QUIT'), ['+OK Logging out.']);
      await c.expectClosed();
    });
  });

  it('answers AUTH with hostile arguments without asking anyone', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'AUTH CRAM-MD5', 'AUTH PLAIN a b', 'AUTH ', 'AUTH PLAIN !!notbase64', 'AUTH PLAIN QQ'), [
        '-ERR Unsupported authentication mechanism.',
        '-ERR Invalid arguments.',
        '-ERR Invalid arguments.',
        '-ERR Invalid base64.',
        '-ERR Invalid base64.',
      ]);
      // A PLAIN message that is base64 but not "authzid NUL authcid NUL password".
      assert.deepEqual(await ask(c, `AUTH PLAIN ${b64('no-nul-here')}`), ['-ERR [AUTH] Authentication failed.']);
      assert.equal(h.attempts.length, 0);
    });
  });

  it('refuses control characters in a user name at USER, and counts it as a failed login', async () => {
    await withServer({ limits: { maxFailedLoginsPerConnection: 2 } }, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'USER al\x00ice', 'USER bob\x1b[2J'), ['-ERR [AUTH] Invalid user name.', '-ERR [AUTH] Invalid user name.']);
      await c.expectClosed();
      assert.equal(h.attempts.length, 0);
    });
  });

  it('closes after maxCommandsBeforeLogin commands', async () => {
    await withServer({ limits: { maxCommandsBeforeLogin: 3 } }, async ({ connect }) => {
      const c = await connect();
      c.write('CAPA\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n');
      await c.until('.');
      assert.deepEqual(await c.until('-ERR Too'), ['-ERR Command not valid before login.', '-ERR Command not valid before login.', '-ERR Too many commands.']);
      await c.expectClosed();
    });
  });

  it('answers a 100 KB line with -ERR Line too long and closes', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      c.write(`USER ${'a'.repeat(100 * 1024)}\r\nCAPA\r\n`);
      assert.equal(await c.next(), '-ERR Line too long');
      await c.expectClosed();
      assert.deepEqual(c.rest(), []);
    });
  });

  it('closes an idle connection before login, after preLoginIdleTimeout since the last command', async () => {
    const clock = new FakeClock();
    await withServer({ scheduler: clock, limits: { preLoginIdleTimeout: 150 } }, async ({ connect }) => {
      const c = await connect();
      clock.advance(149);
      assert.deepEqual(await ask(c, 'NOOP'), ['-ERR Command not valid before login.'], 'still served 1 ms before the timeout');
      clock.advance(150);
      assert.equal(await c.next(), '-ERR Disconnected for inactivity.');
      await c.expectClosed();
    });
  });

  it('survives a client that resets mid-command', async () => {
    await withServer({ mode: 'none' }, async ({ connect, sessions }) => {
      const c = await connect();
      c.write('USER ali');
      c.sock.resetAndDestroy();
      await sessions[0];
      const d = await connect();
      assert.deepEqual(await ask(d, 'USER alice'), ['+OK']);
    });
  });
});

describe('pop3 session: STLS', SESSION_SUITE, () => {
  it('offers STLS and refuses credentials before TLS, discards injected plaintext, then logs in', async () => {
    await withServer({ mode: 'starttls' }, async ({ connect, h }) => {
      const c = await connect();
      c.write('CAPA\r\n');
      const caps = await c.until('.');
      assert.ok(caps.includes('STLS'));
      assert.ok(!caps.some((l) => /^(USER|SASL)/.test(l)));
      assert.deepEqual(await ask(c, 'USER alice', 'PASS secret', 'AUTH PLAIN', 'AUTH'), [
        '-ERR Use STLS first.',
        '-ERR Use STLS first.',
        '-ERR Use STLS first.',
        '-ERR Use STLS first.',
      ]);
      c.write('STLS\r\nUSER injected\r\n');
      assert.equal(await c.next(), '+OK Begin TLS negotiation now.');
      const s = await upgradeClient(c);
      s.write('CAPA\r\n');
      const after = await s.until('.');
      assert.deepEqual(after, ['+OK Capability list follows', ...TLS_CAPS, '.'], 'the injected USER was never answered');
      assert.deepEqual(await ask(s, 'STLS', 'PASS x'), ['-ERR STLS not available.', '-ERR No username given.']);
      s.write('USER alice\r\nPASS secret\r\n');
      assert.deepEqual(await s.until('+OK SPLICED'), ['+OK', '+OK Logged in.', '+OK SPLICED']);
      assert.deepEqual(logins(h), [{ user: 'alice', password: 'secret' }]);
      s.destroy();
    });
  });
});

describe('pop3 session: login', SESSION_SUITE, () => {
  it('USER/PASS with spaces in the password, commands pipelined behind PASS go to the upstream', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      c.write('USER alice\r\nPASS pass with spaces \r\nSTAT\r\nRETR 1\r\n');
      assert.deepEqual(await c.until('+OK SPLICED'), ['+OK', '+OK Logged in.', '+OK SPLICED']);
      assert.deepEqual(logins(h), [{ user: 'alice', password: 'pass with spaces ' }]);
      assert.equal(h.splices[0]?.clientBuffered.toString(), 'STAT\r\nRETR 1\r\n');
      assert.equal(h.attempts[0]?.protocol, 'pop3');
      assert.equal(h.attempts[0]?.clientIp, '127.0.0.1');
    });
  });

  it('AUTH PLAIN with an initial response, and "=" as an empty one', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'AUTH PLAIN ='), ['-ERR [AUTH] Authentication failed.']);
      c.write(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`);
      assert.deepEqual(await c.until('+OK SPLICED'), ['+OK Logged in.', '+OK SPLICED']);
      assert.deepEqual(logins(h), [{ user: 'alice', password: 'secret' }]);
    });
  });

  it('AUTH PLAIN without initial response: "+ " continuation; "*" cancels', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'AUTH PLAIN', '*'), ['+ ', '-ERR Authentication cancelled.']);
      assert.deepEqual(await ask(c, 'AUTH PLAIN', 'not base64!'), ['+ ', '-ERR Invalid base64.']);
      assert.deepEqual(await ask(c, 'auth plain'), ['+ ']);
      c.write(`${b64('alice\0alice\0secret')}\r\n`);
      assert.deepEqual(await c.until('+OK SPLICED'), ['+OK Logged in.', '+OK SPLICED']);
      assert.deepEqual(logins(h), [{ user: 'alice', password: 'secret' }]);
    });
  });

  it('AUTH LOGIN with and without initial response', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'AUTH LOGIN', b64('alice')), [`+ ${b64('Username:')}`, `+ ${b64('Password:')}`]);
      c.write(`${b64('pw 1')}\r\n`);
      assert.deepEqual(await c.until('+OK SPLICED'), ['+OK Logged in.', '+OK SPLICED']);
      const d = await connect();
      assert.deepEqual(await ask(d, `AUTH LOGIN ${b64('bob')}`), [`+ ${b64('Password:')}`]);
      d.write(`${b64('pw 2')}\r\n`);
      assert.deepEqual(await d.until('+OK SPLICED'), ['+OK Logged in.', '+OK SPLICED']);
      assert.deepEqual(logins(h), [
        { user: 'alice', password: 'pw 1' },
        { user: 'bob', password: 'pw 2' },
      ]);
    });
  });

  it('refuses a PLAIN authzid other than the user, and a NUL in the password', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, `AUTH PLAIN ${b64('admin\0alice\0secret')}`, 'USER alice', 'PASS a\x00b'), [
        '-ERR [AUTH] Authentication failed.',
        '+OK',
        '-ERR [AUTH] Authentication failed.',
      ]);
      assert.equal(h.attempts.length, 0);
    });
  });

  it('says nothing while the login waits, then the final answer; the session stays usable after a refusal', async () => {
    const clock = new FakeClock();
    let release!: (r: Refusal) => void;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const behaviour: Behaviour = (_a, v) => {
      if (v.kind === 'ok') v.session.close();
      held();
      return new Promise((resolve) => (release = resolve));
    };
    await withServer({ behaviour, scheduler: clock }, async ({ connect }) => {
      const c = await connect();
      c.write('USER alice\r\nPASS secret\r\nCAPA\r\n');
      assert.equal(await c.next(), '+OK');
      await holding;
      clock.advance(200);
      release({ kind: 'pending-timeout', requestId: 'r1' });
      // Replies arrive in order: a progress line sent during the wait would come before this one.
      assert.equal(await c.next(), '-ERR [SYS/TEMP] Still waiting for approval: approve this connection on your phone, then retry.', 'no progress lines in POP3');
      assert.equal(await c.next(), '+OK Capability list follows', 'the pipelined CAPA is answered after the refusal');
    });
  });

  it('closes after maxFailedLoginsPerConnection wrong passwords', async () => {
    const behaviour: Behaviour = () => ({ kind: 'bad-password', reply: '[AUTH] Authentication failed.' });
    await withServer({ behaviour, limits: { maxFailedLoginsPerConnection: 2 } }, async ({ connect, h }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'USER a', 'PASS b', 'USER a', 'PASS c'), ['+OK', '-ERR [AUTH] Authentication failed.', '+OK', '-ERR [AUTH] Authentication failed.']);
      await c.expectClosed();
      assert.equal(h.attempts.length, 2);
    });
  });

  it('passes an upstream [IN-USE] refusal on as it was said', async () => {
    const behaviour: Behaviour = () => ({ kind: 'unavailable', reason: 'upstream', reply: '[IN-USE] Mailbox is locked' });
    await withServer({ behaviour }, async ({ connect }) => {
      const c = await connect();
      assert.deepEqual(await ask(c, 'USER a', 'PASS b', 'USER a'), ['+OK', '-ERR [IN-USE] Mailbox is locked', '+OK']);
    });
  });

  it('aborts the wait when the client goes away, and the upstream session is closed', async () => {
    let signalled = false;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const behaviour: Behaviour = (a, v) =>
      new Promise((resolve) => {
        held();
        a.signal?.addEventListener('abort', () => {
          signalled = true;
          if (v.kind === 'ok') v.session.close();
          resolve({ kind: 'aborted' });
        });
      });
    let closed = () => 0;
    await withServer({ behaviour, mode: 'none' }, async ({ connect, h }) => {
      closed = () => h.upstreams.reduce((n, u) => n + u.closes, 0);
      const c = await connect();
      assert.deepEqual(await ask(c, 'USER a'), ['+OK']);
      c.write('PASS b\r\n');
      await holding;
      c.destroy();
    });
    assert.ok(signalled);
    assert.equal(closed(), 1);
  });
});
