import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { decide, enrol, startMailotp, waitForRequest } from './harness.js';
import { rawConnect } from './raw-client.js';

const USERS = [
  { user: 'alice', password: 'Alice-Drain-Pw-1' },
  { user: 'bob', password: 'Bob-Held-Pw-22' },
  { user: 'carol', password: 'Carol-Held-Pop3-Pw-3' },
  { user: 'dave', password: 'Dave-Held-Smtp-Pw-4' },
];

describe('SIGTERM: goodbyes at once, spliced sessions drain, exit 0', () => {
  let dovecot: DovecotHandle;
  before(async () => {
    dovecot = await startDovecot({ users: USERS });
  });
  after(async () => {
    await dovecot?.stop();
  });

  it('says each protocol goodbye to pre-login and held sessions (IMAP, POP3, SMTP), lets a spliced IMAP session finish, then exits 0', async () => {
    // A drain long enough that the spliced session's LOGOUT, not the timeout, ends it.
    const m = await startMailotp({ dovecot, drainTimeout: '60s', daemonOtp: { holdTime: '60s' } });
    const conns: ReturnType<typeof rawConnect>[] = [];
    const open = (port: number) => {
      const c = rawConnect(port, '127.0.0.1');
      conns.push(c);
      return c;
    };
    try {
      const alice = await enrol(m, 'alice');
      const bob = await enrol(m, 'bob');

      // (d) A spliced session: alice logged in and approved.
      const spliced = open(m.imaps);
      await spliced.line((l) => l.startsWith('* OK'));
      spliced.socket.write(`a1 LOGIN alice ${USERS[0]!.password}\r\n`);
      const req = await waitForRequest(m.portal, alice, (r) => r.user === 'alice');
      await decide(m.portal, alice, req.id, 'approve');
      assert.match(await spliced.line((l) => l.startsWith('a1 ')), /^a1 OK/);

      // (b) A login held for bob's approval.
      const held = open(m.imaps);
      await held.line((l) => l.startsWith('* OK'));
      held.socket.write(`b1 LOGIN bob ${USERS[1]!.password}\r\n`);
      await waitForRequest(m.portal, bob, (r) => r.user === 'bob');

      // (b) A POP3 PASS held for carol's approval, and an SMTP AUTH held for dave's.
      const carol = await enrol(m, 'carol');
      const dave = await enrol(m, 'dave');
      const heldPop3 = open(m.pop3s);
      const pop3Greeting = await heldPop3.line((l) => l.startsWith('+OK'));
      heldPop3.socket.write('USER carol\r\n');
      await heldPop3.line((l) => l.startsWith('+OK') && l !== pop3Greeting);
      heldPop3.socket.write(`PASS ${USERS[2]!.password}\r\n`);
      await waitForRequest(m.portal, carol, (r) => r.user === 'carol');
      const heldSmtp = open(m.smtps);
      await heldSmtp.line((l) => l.startsWith('220'));
      heldSmtp.socket.write('EHLO client.example\r\n');
      await heldSmtp.line((l) => l.startsWith('250 '));
      heldSmtp.socket.write(`AUTH PLAIN ${Buffer.from(`\0dave\0${USERS[3]!.password}`).toString('base64')}\r\n`);
      await waitForRequest(m.portal, dave, (r) => r.user === 'dave');

      // (a), (c) Pre-login IMAP, POP3 and SMTP clients, greeted and idle.
      const imap = open(m.imaps);
      await imap.line((l) => l.startsWith('* OK'));
      const pop3 = open(m.pop3s);
      await pop3.line((l) => l.startsWith('+OK'));
      const smtp = open(m.smtps);
      await smtp.line((l) => l.startsWith('220'));

      m.child.kill('SIGTERM');

      assert.equal(await imap.line((l) => l.startsWith('* BYE')), '* BYE Server shutting down');
      await imap.closed;
      const heldReply = await held.line((l) => l.startsWith('b1 '));
      assert.match(heldReply, /^b1 NO \[UNAVAILABLE\] /);
      assert.equal(await held.line((l) => l.startsWith('* BYE')), '* BYE Server shutting down');
      const lines = held.received().split('\r\n');
      assert.ok(lines.indexOf(heldReply) < lines.indexOf('* BYE Server shutting down'), 'the held login is answered before the BYE');
      await held.closed;
      // fetchmail reads a POP3 -ERR as temporary only with "wait" in it (see pop3-replies.ts).
      assert.match(await pop3.line((l) => l.startsWith('-ERR')), /^-ERR \[SYS\/TEMP\] .*wait/);
      await pop3.closed;
      // The held POP3 PASS and SMTP AUTH are answered with the goodbye itself: a temporary refusal.
      assert.match(await heldPop3.line((l) => l.startsWith('-ERR')), /^-ERR \[SYS\/TEMP\] .*wait/);
      assert.ok(!heldPop3.received().includes('+OK Logged in'), 'the held POP3 login was not let in');
      await heldPop3.closed;
      assert.match(await heldSmtp.line((l) => /^[2-5]\d\d /.test(l) && !l.startsWith('220') && !l.startsWith('250')), /^421 4\.3\.2 /);
      await heldSmtp.closed;
      assert.match(await smtp.line((l) => l.startsWith('421')), /^421 4\.3\.2 /);
      await smtp.closed;

      // The spliced session still reaches Dovecot until it logs out, within the drain.
      await m.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('stopping'));
      spliced.socket.write('a2 SELECT INBOX\r\n');
      assert.match(await spliced.line((l) => l.startsWith('a2 ')), /^a2 OK/);
      assert.equal(m.child.exitCode, null, 'still running while a spliced session is open');
      spliced.socket.write('a3 LOGOUT\r\n');
      assert.match(await spliced.line((l) => l.startsWith('a3 ')), /^a3 OK/);
      await spliced.closed;

      // Not m.stop(): a second SIGTERM would end the process the hard way.
      const [code] = m.child.exitCode === null ? ((await once(m.child, 'exit')) as [number | null]) : [m.child.exitCode];
      assert.equal(code, 0);
      const msgs = m.events().map((e) => e.msg);
      assert.ok(!msgs.includes('drain timeout: closing the remaining sessions'), 'the drain ended with the last session, not its timeout');
      assert.ok(msgs.includes('stopped'));
    } finally {
      for (const c of conns) c.socket.destroy();
      await m.stop();
    }
  });

  it('a portal connection whose TLS handshake ends after SIGTERM (a browser preconnect) does not hold up the exit', async () => {
    const m = await startMailotp({ dovecot });
    // Accepted before the SIGTERM, its handshake still to come: Node hands it to the HTTP server
    // only after close() has dropped the idle connections, and times no request-less one out then.
    const tcp = net.connect({ host: '127.0.0.1', port: m.portal });
    await once(tcp, 'connect');
    await new Promise((r) => setTimeout(r, 100));
    const exited = m.stop();
    await m.waitForLog((e) => e.msg === 'shutting down');
    const secure = tls.connect({ socket: tcp, ca: testCerts().ca, servername: 'localhost' });
    try {
      await once(secure, 'secureConnect');
      // Sends no request, like a preconnected browser socket; the exit must not wait for it.
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 8 s after SIGTERM'), 8_000))]);
      assert.equal(code, 0);
    } finally {
      secure.destroy();
      await exited;
    }
  });

  it('closes a spliced session still open when shutdown.drainTimeout runs out, and still exits 0', async () => {
    const m = await startMailotp({ dovecot, drainTimeout: '1s' });
    const spliced = rawConnect(m.imaps, '127.0.0.1');
    try {
      const alice = await enrol(m, 'alice');
      await spliced.line((l) => l.startsWith('* OK'));
      spliced.socket.write(`a1 LOGIN alice ${USERS[0]!.password}\r\n`);
      const req = await waitForRequest(m.portal, alice, (r) => r.user === 'alice');
      await decide(m.portal, alice, req.id, 'approve');
      assert.match(await spliced.line((l) => l.startsWith('a1 ')), /^a1 OK/);
      m.child.kill('SIGTERM');
      await spliced.closed;
      const [code] = m.child.exitCode === null ? ((await once(m.child, 'exit')) as [number | null]) : [m.child.exitCode];
      assert.equal(code, 0);
      assert.ok(m.events().some((e) => e.msg === 'drain timeout: closing the remaining sessions'));
    } finally {
      spliced.socket.destroy();
      await m.stop();
    }
  });
});
