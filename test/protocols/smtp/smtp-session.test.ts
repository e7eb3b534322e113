import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { FakeClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/log/logger.js';
import { testCerts } from '../../helpers/certs.js';
import { upgradeClient } from '../../helpers/line-client.js';
import { b64, type Behaviour, SESSION_SUITE } from '../../helpers/session-harness.js';
import { HOST, plain, reply, TLS_EHLO, withServer } from './smtp-test-kit.js';
const AUTH_OK = '235 2.7.0 Authentication successful';

describe('smtp session: before AUTH', SESSION_SUITE, () => {
  it('greets, answers EHLO with the filtered list, and serves NOOP, RSET, HELP, QUIT', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      c.write('EHLO client.example\r\n');
      assert.deepEqual(await reply(c), TLS_EHLO);
      c.write('HELO client.example\r\nNOOP\r\nRSET\r\nHELP\r\nQUIT\r\n');
      assert.deepEqual(await c.until('221'), [`250 ${HOST}`, '250 2.0.0 OK', '250 2.0.0 OK', '214 2.0.0 Say EHLO, then AUTH; after that this is your mail server as usual', `221 2.0.0 ${HOST} Bye`]);
      await c.expectClosed();
    });
  });

  it('refuses mail transaction commands before AUTH, and unknown ones', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nVRFY root\r\nXYZZY\r\n\r\nNOOP\r\n');
      assert.deepEqual(await c.until('250'), [
        '530 5.7.0 Authentication required',
        '530 5.7.0 Authentication required',
        '530 5.7.0 Authentication required',
        '530 5.7.0 Authentication required',
        '500 5.5.1 Unrecognized command',
        '500 5.5.1 Unrecognized command',
        '250 2.0.0 OK',
      ]);
      // The chunk's octets (with CRLFs and a fake AUTH in them) are skipped, not read as commands.
      const chunk = `AUTH PLAIN ${plain('alice', 'pw')}\r\nQUIT\r\n`;
      c.write(`BDAT ${chunk.length} LAST\r\n${chunk}NOOP\r\n`);
      assert.deepEqual(await c.until('250'), ['530 5.7.0 Authentication required', '250 2.0.0 OK']);
      c.write('BDAT many\r\n');
      assert.equal(await c.next(), '501 5.5.4 Syntax: BDAT chunk-size [LAST]');
      await c.expectClosed();
      assert.equal(h.attempts.length, 0);
    });
  });

  it('wants EHLO before AUTH, and a sane EHLO name', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\nEHLO\r\nEHLO a\x01b\r\nEHLO ok.example extra words\r\n`);
      assert.deepEqual((await c.until('250 ')).slice(0, 4), ['503 5.5.1 Send EHLO first', '501 5.5.4 Syntax: EHLO hostname', '501 5.5.4 Invalid domain name', '250-mx.test']);
    });
  });

  it('on a STARTTLS port: no AUTH in clear, pipelined plaintext discarded, EHLO again after TLS', async () => {
    await withServer({ mode: 'starttls' }, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO client.example\r\n');
      const ehlo = await reply(c);
      assert.ok(ehlo.includes('250 STARTTLS') || ehlo.includes('250-STARTTLS'), ehlo.join('|'));
      assert.ok(!ehlo.some((l) => /AUTH|XCLIENT/.test(l)));
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\nMAIL FROM:<a@b>\r\n`);
      assert.deepEqual(await c.until('530', 3000).then(async (l) => [...l, await c.next()]), [
        '530 5.7.0 Must issue a STARTTLS command first',
        '530 5.7.0 Must issue a STARTTLS command first',
      ]);
      c.write(`STARTTLS\r\nEHLO injected\r\nAUTH PLAIN ${plain('alice', 'pw')}\r\n`);
      assert.equal(await c.next(), '220 2.0.0 Ready to start TLS');
      const s = await upgradeClient(c);
      s.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\nSTARTTLS\r\nEHLO again.example\r\n`);
      assert.deepEqual(await s.until('250 '), ['503 5.5.1 Send EHLO first', '503 5.5.1 TLS already active', ...TLS_EHLO]);
      assert.equal(h.attempts.length, 0, 'nothing sent before the handshake was executed');
      s.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\n`);
      assert.equal(await s.next(), AUTH_OK);
      assert.equal(h.upstreamLogins[0]?.client.heloName, 'again.example');
      s.destroy();
    });
  });

  it('answers STARTTLS where it is not offered', async () => {
    await withServer({ mode: 'none' }, async ({ connect }) => {
      const c = await connect();
      c.write('STARTTLS\r\nSTARTTLS now\r\n');
      assert.deepEqual([await c.next(), await c.next()], ['502 5.5.1 STARTTLS not available', '501 5.5.4 Syntax: STARTTLS']);
      c.write('EHLO x\r\n');
      assert.equal((await reply(c)).at(-1), '250 AUTH PLAIN LOGIN');
    });
  });
});

describe('smtp session: AUTH', SESSION_SUITE, () => {
  it('PLAIN with an initial response: 235, then the splice gets every byte pipelined behind AUTH', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO client.example\r\n');
      await reply(c);
      const behind = 'MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nBDAT 5 LAST\r\n\0\r\n.\r';
      c.write(`AUTH PLAIN ${plain('alice', 'pä ss')}\r\n${behind}`);
      assert.deepEqual(await c.until('250 SPLICED'), [AUTH_OK, '250 upstream-extra', '250 SPLICED']);
      assert.equal(h.splices[0]?.clientBuffered.toString('latin1'), behind);
      const a = h.attempts[0]!;
      assert.deepEqual([a.protocol, a.user, a.password, a.clientIp, a.clientName], ['smtp', 'alice', 'pä ss', '127.0.0.1', 'client.example']);
      assert.equal(h.upstreamLogins[0]?.client.heloName, 'client.example');
    });
  });

  it('PLAIN and LOGIN step by step, LOGIN with an initial response', async () => {
    for (const [steps, expect] of [
      [['AUTH PLAIN', plain('u1', 'p1')], ['334 ', AUTH_OK]],
      [['AUTH login', b64('u2'), b64('p2')], ['334 VXNlcm5hbWU6', '334 UGFzc3dvcmQ6', AUTH_OK]],
      [[`AUTH LOGIN ${b64('u3')}`, b64('p3')], ['334 UGFzc3dvcmQ6', AUTH_OK]],
      [[`AUTH PLAIN ${plain('u4', 'p4', 'u4')}`], [AUTH_OK]],
    ] as const) {
      await withServer({}, async ({ connect, h }) => {
        const c = await connect();
        c.write('EHLO x\r\n');
        await reply(c);
        const got: string[] = [];
        for (const line of steps) {
          c.write(`${line}\r\n`);
          got.push(await c.next());
        }
        assert.deepEqual(got, expect);
        assert.equal(h.attempts.length, 1);
      });
    }
  });

  it('cancel, bad base64, unknown mechanisms, malformed and foreign PLAIN', async () => {
    await withServer({ limits: { maxFailedLoginsPerConnection: 10 } }, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      const send = async (line: string) => {
        c.write(`${line}\r\n`);
        return c.next();
      };
      assert.equal(await send('AUTH LOGIN'), '334 VXNlcm5hbWU6');
      assert.equal(await send('*'), '501 5.7.0 Authentication cancelled');
      assert.equal(await send('AUTH PLAIN'), '334 ');
      assert.equal(await send('not base64!'), '501 5.5.2 Invalid base64 data');
      assert.equal(await send('AUTH PLAIN @@@'), '501 5.5.2 Invalid base64 data');
      assert.equal(await send('AUTH CRAM-MD5'), '504 5.5.4 Unrecognized authentication type');
      assert.equal(await send('AUTH'), '501 5.5.4 Syntax: AUTH mechanism [initial-response]');
      assert.equal(await send('AUTH PLAIN a b'), '501 5.5.4 Syntax: AUTH mechanism [initial-response]');
      assert.equal(await send('AUTH PLAIN ='), '535 5.7.8 Authentication credentials invalid');
      assert.equal(await send(`AUTH PLAIN ${plain('alice', 'pw', 'bob')}`), '535 5.7.8 Authentication credentials invalid');
      assert.equal(await send(`AUTH PLAIN ${plain('al\x1bice', 'pw')}`), '535 5.7.8 Authentication credentials invalid');
      assert.equal(await send(`AUTH PLAIN ${plain('alice', '')}`), '535 5.7.8 Authentication credentials invalid');
      assert.equal(await send(`AUTH LOGIN ${b64('al\r\nice')}`), '334 UGFzc3dvcmQ6');
      assert.equal(await send(b64('pw')), '535 5.7.8 Authentication credentials invalid');
      assert.equal(h.attempts.length, 0, 'none of these reached the core');
      assert.equal(await send('NOOP'), '250 2.0.0 OK');
    });
  });

  it('sends nothing while the login is held, then the table reply; a retry is served', async () => {
    const clock = new FakeClock();
    let calls = 0;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    let timeOut!: () => void;
    const behaviour: Behaviour = async (attempt, v) => {
      if (v.kind !== 'ok') throw new Error('unexpected');
      if (++calls > 1) return { kind: 'approved', session: v.session, reason: 'approval' };
      attempt.onHold?.();
      held();
      await new Promise<void>((resolve) => (timeOut = resolve));
      v.session.close();
      return { kind: 'pending-timeout', requestId: 'r1' };
    };
    await withServer({ behaviour, scheduler: clock }, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\n`);
      await holding;
      clock.advance(300);
      timeOut();
      // Replies arrive in order: a progress line sent during the hold would come before this one.
      assert.equal(await c.next(), '454 4.7.0 Approve this connection on your phone, then retry.', 'no progress line in SMTP');
      assert.equal(h.upstreams[0]?.closed, true);
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\n`);
      assert.equal(await c.next(), AUTH_OK);
    });
  });

  it('after a deny, a second AUTH on the same connection is refused without asking the phone again', async () => {
    const behaviour: Behaviour = (_a, v) => {
      if (v.kind === 'ok') v.session.close();
      return { kind: 'denied', requestId: 'r1' };
    };
    await withServer({ behaviour }, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\nAUTH LOGIN\r\n${b64('alice')}\r\n${b64('pw')}\r\n`);
      assert.deepEqual(await c.until('535 ', 3000).then(async (first) => [...first, await c.next(), await c.next(), await c.next()]), [
        '535 5.7.8 Authentication credentials invalid',
        '334 VXNlcm5hbWU6',
        '334 UGFzc3dvcmQ6',
        '535 5.7.8 Authentication credentials invalid',
      ]);
      assert.equal(h.attempts.length, 1);
    });
  });

  it('logs in again once when the upstream dropped the held session', async () => {
    await withServer({ deadUpstreams: 1 }, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\n`);
      assert.equal(await c.next(), AUTH_OK);
      assert.equal(h.attempts.length, 2);
      assert.equal(h.upstreams[0]?.closed, true);
      assert.equal(h.splices[0]?.upstream, h.upstreams[1]?.socket);
    });
  });

  it('aborts the held login when the client goes away and closes the upstream session', async () => {
    let aborted = false;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const behaviour: Behaviour = async (attempt, v) => {
      held();
      await new Promise<void>((resolve) => attempt.signal?.addEventListener('abort', () => resolve()));
      aborted = true;
      if (v.kind === 'ok') v.session.close();
      return { kind: 'aborted' };
    };
    await withServer({ behaviour }, async ({ connect, sessions, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      c.write(`AUTH PLAIN ${plain('alice', 'pw')}\r\n`);
      await holding;
      c.destroy();
      await Promise.all(sessions);
      assert.ok(aborted);
      assert.equal(h.upstreams[0]?.closed, true);
    });
  });
});

describe('smtp session: limits', SESSION_SUITE, () => {
  it('closes with 421 4.7.0 after the last allowed failed AUTH', async () => {
    const behaviour: Behaviour = () => ({ kind: 'bad-password', reply: '535 5.7.8 Authentication failed' });
    await withServer({ behaviour }, async ({ connect, h }) => {
      const c = await connect();
      c.write('EHLO x\r\n');
      await reply(c);
      for (let i = 0; i < 3; i++) c.write(`AUTH PLAIN ${plain('alice', `bad${i}`)}\r\n`);
      assert.deepEqual(await c.until('421'), [
        '535 5.7.8 Authentication failed',
        '535 5.7.8 Authentication failed',
        '535 5.7.8 Authentication failed',
        `421 4.7.0 ${HOST} Too many failed authentications, closing connection`,
      ]);
      await c.expectClosed();
      assert.equal(h.attempts.length, 3);
    });
  });

  it('caps commands before AUTH, long lines and idle time', async () => {
    await withServer({ limits: { maxCommandsBeforeLogin: 3, maxLineLength: 512 } }, async ({ connect }) => {
      const c = await connect();
      c.write(`NOOP\r\n${'x'.repeat(2000)}\r\nNOOP\r\nNOOP\r\n`);
      assert.deepEqual(await c.until('421'), ['250 2.0.0 OK', '500 5.5.2 Line too long', '250 2.0.0 OK', `421 4.7.0 ${HOST} Too many commands before authentication, closing connection`]);
      await c.expectClosed();
    });
    const clock = new FakeClock();
    await withServer({ scheduler: clock, limits: { preLoginIdleTimeout: 300 } }, async ({ connect }) => {
      const c = await connect();
      clock.advance(299);
      c.write('NOOP\r\n');
      assert.equal(await c.next(), '250 2.0.0 OK', 'still served 1 ms before the timeout');
      clock.advance(300);
      assert.equal(await c.next(), `421 4.4.2 ${HOST} Idle timeout, closing connection`);
      await c.expectClosed();
    });
  });

  it('never logs the credentials, even at trace level', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) });
    const logger = createLogger({ level: 'trace', destination: sink } as Parameters<typeof createLogger>[0]);
    const behaviour: Behaviour = () => ({ kind: 'bad-password' });
    await withServer({ logger, behaviour, limits: { maxFailedLoginsPerConnection: 10 } }, async ({ connect }) => {
      const c = await connect();
      c.write(`EHLO x\r\nAUTH PLAIN ${plain('alice', 'Sekr1t-pw')}\r\n`);
      await c.until('535');
      c.write(`AUTH LOGIN\r\n${b64('alice')}\r\n${b64('Sekr1t-pw')}\r\nSekr1t-pw\r\n`);
      await c.until('535');
      assert.equal(await c.next(), '500 5.5.1 Unrecognized command');
    });
    const all = lines.join('');
    assert.match(all, /AUTH PLAIN \*\*\*/);
    for (const secret of ['Sekr1t-pw', b64('Sekr1t-pw'), plain('alice', 'Sekr1t-pw')]) assert.ok(!all.includes(secret), secret);
  });
});

describe('smtp session: a client we did not write', SESSION_SUITE, () => {
  it("Python's smtplib logs in with STARTTLS and sends through the splice", async () => {
    await withServer({ mode: 'starttls' }, async ({ port, h }) => {
      const script = [
        'import smtplib, ssl, sys',
        'ctx = ssl.create_default_context(cafile=sys.argv[1])',
        's = smtplib.SMTP("127.0.0.1", int(sys.argv[2]), timeout=5)',
        's.ehlo("py.example")',
        'print("PRE", sorted(s.esmtp_features))',
        's.starttls(context=ctx)',
        's.ehlo("py.example")',
        'print("POST", sorted(s.esmtp_features))',
        'print("LOGIN", s.login("alice@example.com", "pa ss"))',
      ].join('\n');
      const out = await new Promise<string>((resolve, reject) => {
        execFile('python3', ['-c', script, testCerts().caFile, String(port)], { timeout: 10_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`${err.message}\n${stderr}`));
          else resolve(stdout);
        });
      });
      assert.match(out, /^PRE .*'starttls'/m);
      assert.doesNotMatch(out, /^PRE .*'auth'/m);
      assert.match(out, /^POST .*'auth'/m);
      assert.match(out, /^LOGIN \(235, b'2\.7\.0 Authentication successful'\)$/m);
      assert.equal(h.attempts[0]?.password, 'pa ss');
    });
  });
});
