import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { FakeClock } from '../../../src/core/clock.js';
import { testCerts } from '../../helpers/certs.js';
import { connectPlain } from '../../helpers/line-client.js';
import { withServer as withServerIn } from './imap-test-kit.js';
import { SESSION_SUITE } from '../../helpers/session-harness.js';

/** These tests speak clear text unless they say otherwise. */
const withServer = (opts: Parameters<typeof withServerIn>[0], body: Parameters<typeof withServerIn>[1]) =>
  withServerIn({ mode: 'none', ...opts }, body);

describe('imap session: limits', SESSION_SUITE, () => {
  it('closes after maxCommandsBeforeLogin commands', async () => {
    await withServer({ limits: { maxCommandsBeforeLogin: 3 } }, async ({ connect, sessions }) => {
      const c = await connect();
      await c.next();
      c.write('a NOOP\r\nb FOO\r\n(bad\r\nd NOOP\r\ne NOOP\r\n');
      assert.deepEqual(await c.until('* BYE'), [
        'a OK NOOP completed',
        'b BAD Command not valid before login',
        '* BAD Missing or invalid tag',
        '* BYE Too many commands',
      ]);
      await c.expectClosed();
      assert.deepEqual(c.rest(), []);
      await Promise.all(sessions);
    });
  });

  it('closes after maxFailedLoginsPerConnection failed logins', async () => {
    await withServer(
      { limits: { maxFailedLoginsPerConnection: 2 }, behaviour: () => ({ kind: 'bad-password', reply: '[AUTHENTICATIONFAILED] Invalid credentials' }) },
      async ({ connect, h }) => {
        const c = await connect();
        await c.next();
        c.write('a LOGIN alice wrong\r\n');
        assert.equal(await c.next(), 'a NO [AUTHENTICATIONFAILED] Invalid credentials');
        c.write('b LOGIN alice wrong\r\nc LOGIN alice wrong\r\n');
        assert.deepEqual(await c.until('* BYE'), ['b NO [AUTHENTICATIONFAILED] Invalid credentials', '* BYE Too many failed logins']);
        await c.expectClosed();
        assert.equal(h.attempts.length, 2);
      },
    );
  });

  it('temporary refusals do not count as failed logins', async () => {
    await withServer(
      { limits: { maxFailedLoginsPerConnection: 1 }, behaviour: () => ({ kind: 'pending-timeout', requestId: 'r' }) },
      async ({ connect }) => {
        const c = await connect();
        await c.next();
        c.write('a LOGIN alice pw\r\nb LOGIN alice pw\r\nc NOOP\r\n');
        assert.equal((await c.until('c ')).at(-1), 'c OK NOOP completed');
      },
    );
  });

  it('says goodbye after the pre-login idle timeout, counted from the last command', async () => {
    const clock = new FakeClock();
    await withServer({ scheduler: clock, limits: { preLoginIdleTimeout: 150 } }, async ({ connect }) => {
      const c = await connect();
      await c.next();
      clock.advance(149);
      c.write('a NOOP\r\n');
      assert.equal(await c.next(), 'a OK NOOP completed', 'still served 1 ms before the timeout');
      clock.advance(150);
      assert.equal(await c.next(), '* BYE Idle timeout');
      await c.expectClosed();
    });
  });

  it('the idle timeout also bounds a TLS handshake that never comes', async () => {
    const clock = new FakeClock();
    await withServer({ scheduler: clock, mode: 'implicit', limits: { preLoginIdleTimeout: 150 } }, async ({ port, sessions }) => {
      const c = await connectPlain(port);
      // The session starts its idle timer once the listener hands it the connection.
      while (clock.pending === 0) await turn();
      clock.advance(150);
      await c.expectClosed();
      assert.deepEqual(c.lines, []);
      await Promise.all(sessions);
    });
  });

  it('answers a 100 KB line and closes without crashing, then serves the next client', async () => {
    await withServer({}, async ({ connect, sessions }) => {
      const c = await connect();
      await c.next();
      c.write(`a LOGIN alice ${'x'.repeat(100 * 1024)}\r\n`);
      assert.deepEqual(await c.until('* BYE'), ['* BAD Line too long', '* BYE Closing connection']);
      await c.expectClosed();
      await sessions[0];
      const d = await connect();
      assert.match(await d.next(), /^\* OK \[CAPABILITY /);
    });
  });

  it('refuses an oversized synchronising literal without reading it, and BYEs a non-synchronising one', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN {1048576}\r\nb NOOP\r\n');
      assert.deepEqual(await c.until('b '), ['a BAD Literal too large', 'b OK NOOP completed']);
      c.write('c LOGIN alice {1048576+}\r\n');
      assert.equal(await c.next(), '* BYE Literal too large');
      await c.expectClosed();
    });
  });

  it('survives a client that resets the connection mid-command', async () => {
    await withServer({}, async ({ connect, sessions }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN {5}\r\n');
      assert.equal(await c.next(), '+ Ready for literal data');
      c.sock.resetAndDestroy();
      await Promise.all(sessions);
    });
  });
});

describe('imap session: a client we did not write', SESSION_SUITE, () => {
  it("Python's imaplib logs in over implicit TLS", async () => {
    await withServer({ mode: 'implicit' }, async ({ port, h }) => {
      const script = [
        'import imaplib, ssl, sys',
        'ctx = ssl.create_default_context(cafile=sys.argv[1])',
        'm = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[2]), ssl_context=ctx, timeout=5)',
        'print("CAPS", " ".join(m.capabilities))',
        'typ, data = m.login("alice@example.com", "pa ss\\"word")',
        'print("LOGIN", typ, data[0].decode())',
        'm.shutdown()',
      ].join('\n');
      const out = await new Promise<string>((resolve, reject) => {
        execFile('python3', ['-c', script, testCerts().caFile, String(port)], { timeout: 10_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`${err.message}\n${stderr}`));
          else resolve(stdout);
        });
      });
      assert.match(out, /^CAPS IMAP4REV1 .*AUTH=PLAIN AUTH=LOGIN$/m);
      assert.match(out, /^LOGIN OK \[CAPABILITY IMAP4rev1 IDLE\] Logged in$/m);
      assert.equal(h.attempts[0]?.user, 'alice@example.com');
      assert.equal(h.attempts[0]?.password, 'pa ss"word');
      assert.equal(h.splices.length, 1);
    });
  });
});
