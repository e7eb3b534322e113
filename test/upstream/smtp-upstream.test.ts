import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../../src/config/schema.js';
import type { VerifyResult } from '../../src/core/login-types.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { DEFAULT_SMTP_EXTENSIONS, SmtpUpstream, xtext, type SmtpUpstreamSession } from '../../src/upstream/smtp-upstream.js';
import { untrustedCaFile } from '../helpers/certs.js';
import { DEFAULT_DOVECOT_USERS, startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { freePort } from '../helpers/free-port.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';

const WEIRD_PASSWORD = 'p a"s\\s wörd ✓ +=';
const CLIENT = { ip: '198.51.100.7', port: 40001, heloName: 'client.helo.example' };

let dv: DovecotHandle;
let sink: SmtpSink;
const cleanups: (() => void)[] = [];

before(async () => {
  sink = await startSmtpSink();
  dv = await startDovecot({ relayPort: sink.port, users: [...DEFAULT_DOVECOT_USERS, { user: 'erin', password: WEIRD_PASSWORD }] });
});

after(async () => {
  for (const c of cleanups) c();
  await dv?.stop();
  await sink?.stop();
});

function endpoint(over: Partial<UpstreamEndpoint> = {}): UpstreamEndpoint {
  return { host: '127.0.0.1', port: dv.ports.submission, tls: 'starttls', verify: true, ca: dv.caFile, servername: 'localhost', connectTimeout: 3000, ...over };
}

function expectOk(r: VerifyResult<SmtpUpstreamSession>): SmtpUpstreamSession {
  assert.equal(r.kind, 'ok', `expected ok, got ${JSON.stringify(r)}`);
  const session = (r as { session: SmtpUpstreamSession }).session;
  cleanups.push(() => session.close());
  return session;
}


/** Talks SMTP over a handed-out session socket: one command, its whole reply. */
function converse(socket: net.Socket, send: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (until.test(got)) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
    socket.write(send);
  });
}

/** A scripted upstream: `reply(line)` answers each command line. */
async function fakeSmtp(greeting: string, reply: (line: string, s: net.Socket) => void): Promise<UpstreamEndpoint> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.write(`${greeting}\r\n`);
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        reply(line, s);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => sockets.add(s));
  cleanups.push(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  return { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, tls: 'none', verify: true, connectTimeout: 1000 };
}

const EHLO = (extra: string[]) => ['250-fake', ...extra.map((e) => `250-${e}`), '250 8BITMIME'].join('\r\n') + '\r\n';

describe('SmtpUpstream against Dovecot submission', () => {
  test('logs in over STARTTLS; the session is right after AUTH and relays what the client sends', async () => {
    const up = new SmtpUpstream(endpoint(), silentLogger());
    const session = expectOk(await up.login('alice', 'alice-pass-1', CLIENT));
    assert.ok(session.socket instanceof tls.TLSSocket);
    assert.equal(session.socket.listenerCount('data'), 0);
    assert.ok(session.socket.isPaused());
    assert.ok(session.alive);
    const { socket } = session.handOver();
    const before = sink.messages.length;
    const out = await converse(
      socket,
      'MAIL FROM:<alice@example.com>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n',
      /354[^\n]*\n/,
    );
    assert.match(out, /^250 2\.1\.0 .*\r\n250 2\.\d\.\d .*\r\n354 /s);
    assert.match(await converse(socket, 'Subject: t1\r\n\r\nbody\r\n.\r\n', /^250 .*\r\n/m), /^250 2\.0\.0/);
    const [msg] = (await sink.waitFor(before + 1)).slice(before);
    assert.equal(msg?.mailFrom, 'alice@example.com');
    // XCLIENT reached Dovecot: it writes the client's HELO name and address, not mailotp's.
    assert.match(msg!.raw.toString(), /^Received: from client\.helo\.example \(\[198\.51\.100\.7\]\)/);
    await dv.waitForLog(/submission-login: .*Login: user=<alice>, method=PLAIN, rip=198\.51\.100\.7, .*TLS/);
    socket.destroy();
  });

  test('logs in over plain TCP (tls none) and with AUTH LOGIN; IPv6 clients go through XCLIENT too', async () => {
    const up = new SmtpUpstream(endpoint({ tls: 'none' }), silentLogger(), { auth: 'login' });
    const session = expectOk(await up.login('erin', WEIRD_PASSWORD, { ip: '2001:db8::7', port: 1, heloName: 'v6.example' }));
    assert.ok(!(session.socket instanceof tls.TLSSocket));
    await dv.waitForLog(/Login: user=<erin>, method=LOGIN, rip=2001:db8::7/);
    expectOk(await new SmtpUpstream(endpoint(), silentLogger()).login('erin', WEIRD_PASSWORD, { ip: '::ffff:203.0.113.4', port: 2 }));
    await dv.waitForLog(/Login: user=<erin>, method=PLAIN, rip=203\.0\.113\.4,/);
  });

  test("a wrong password is bad-password with Dovecot's reply, at once", async () => {
    const up = new SmtpUpstream(endpoint(), silentLogger());
    const started = Date.now();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await up.login('dave', `wrong-${i}`, CLIENT), { kind: 'bad-password', reply: '535 5.7.8 Authentication failed.' });
    }
    assert.ok(Date.now() - started < 3000, `3 failures took ${Date.now() - started} ms`);
    await dv.waitForLog(/auth: .*\(dave,198\.51\.100\.7,.*Password mismatch/);
  });

  test('a certificate from another CA makes the upstream unavailable', async () => {
    const r = await new SmtpUpstream(endpoint({ ca: untrustedCaFile() }), silentLogger()).login('alice', 'alice-pass-1', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /certificate/i);
  });

  test("extensions() is Dovecot's EHLO list as a TLS client sees it", async () => {
    const up = new SmtpUpstream(endpoint(), silentLogger());
    await up.start();
    const ext = await up.extensions();
    for (const e of ['8BITMIME', 'CHUNKING', 'PIPELINING', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN']) assert.ok(ext.includes(e), `${e} in ${ext.join(', ')}`);
    assert.ok(!ext.includes('STARTTLS'));
    assert.ok(ext.some((e) => e.startsWith('SIZE')));
  });

  test('neither the password nor the AUTH payload reaches the log', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const logger = createLogger({ level: 'trace', destination: out });
    expectOk(await new SmtpUpstream(endpoint(), logger).login('erin', WEIRD_PASSWORD, CLIENT));
    await new SmtpUpstream(endpoint(), logger, { auth: 'login' }).login('erin', 'login-secret', CLIENT);
    for (const secret of ['wörd', 'login-secret', Buffer.from(`\0erin\0${WEIRD_PASSWORD}`).toString('base64'), Buffer.from('login-secret').toString('base64')]) {
      assert.ok(!text.includes(secret), `log contains ${secret}`);
    }
  });
});

describe('SmtpUpstream against scripted servers', () => {
  test('temporary refusals and link problems are unavailable; 535 and account refusals are bad-password', async () => {
    const cases: [string, VerifyResult<SmtpUpstreamSession>['kind']][] = [
      ['454 4.7.0 Temporary authentication failure', 'unavailable'],
      ['421 4.3.2 Shutting down', 'unavailable'],
      ['530 5.7.0 Must issue a STARTTLS command first', 'unavailable'],
      ['534 5.7.9 Authentication mechanism is too weak', 'unavailable'],
      ['535 5.7.8 Nope', 'bad-password'],
      ['554 5.7.1 Account disabled', 'bad-password'],
    ];
    for (const [answer, kind] of cases) {
      const ep = await fakeSmtp('220 fake ESMTP', (line, s) => {
        if (line.startsWith('EHLO')) s.write(EHLO(['AUTH PLAIN']));
        else if (line.startsWith('AUTH')) s.write(`${answer}\r\n`);
      });
      const r = await new SmtpUpstream(ep, silentLogger()).login('u', 'p', CLIENT);
      assert.equal(r.kind, kind, answer);
    }
  });

  test('uses AUTH LOGIN when PLAIN is missing; answers a server that ignores the initial response', async () => {
    const seen: string[] = [];
    const ep = await fakeSmtp('220-fake\r\n220 ESMTP', (line, s) => {
      seen.push(line);
      if (line.startsWith('EHLO')) s.write(EHLO(['AUTH LOGIN CRAM-MD5']));
      else if (line === 'AUTH LOGIN') s.write('334 VXNlcm5hbWU6\r\n');
      else if (line === Buffer.from('u').toString('base64')) s.write('334 UGFzc3dvcmQ6\r\n');
      else if (line === Buffer.from('p').toString('base64')) s.write('235 2.7.0 ok\r\n250 early\r\n');
    });
    const session = expectOk(await new SmtpUpstream(ep, silentLogger()).login('u', 'p', CLIENT));
    assert.equal(session.buffered.toString(), '250 early\r\n');
    assert.deepEqual(seen.slice(1), ['AUTH LOGIN', 'dQ==', 'cA==']);
    const payload = Buffer.from('\0u\0p').toString('base64');
    const ep2 = await fakeSmtp('220 fake', (line, s) => {
      if (line.startsWith('EHLO')) s.write(EHLO(['AUTH PLAIN']));
      else if (line.startsWith('AUTH PLAIN ')) s.write('334 \r\n');
      else if (line === payload) s.write('235 ok\r\n');
    });
    expectOk(await new SmtpUpstream(ep2, silentLogger()).login('u', 'p', CLIENT));
  });

  test('sends only the XCLIENT attributes offered, xtext-encoded, EHLOs again, and goes on when refused', async () => {
    for (const answer of ['220 fake again', '550 5.7.0 Not authorized']) {
      const seen: string[] = [];
      const ep = await fakeSmtp('220 fake', (line, s) => {
        seen.push(line);
        if (line.startsWith('EHLO')) s.write(EHLO(['XCLIENT ADDR HELO', 'AUTH PLAIN']));
        else if (line.startsWith('XCLIENT')) s.write(`${answer}\r\n`);
        else if (line.startsWith('AUTH')) s.write('235 ok\r\n');
      });
      expectOk(await new SmtpUpstream(ep, silentLogger(), { heloName: 'mailotp.test' }).login('u', 'p', { ip: '2001:db8::1', port: 9, heloName: 'a+b=c' }));
      assert.equal(seen[0], 'EHLO mailotp.test');
      assert.equal(seen[1], 'XCLIENT ADDR=IPV6:2001:db8::1 HELO=a+2Bb+3Dc');
      assert.equal(seen[2], answer.startsWith('220') ? 'EHLO a+b=c' : `AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`);
    }
  });

  test('a refusing greeting, a broken reply, silence and an abort are unavailable', async () => {
    const refusing = await fakeSmtp('554 5.3.2 No service', () => undefined);
    const broken = await fakeSmtp('220 fake', (line, s) => line.startsWith('EHLO') && s.write('250-fake\r\n251 mixed\r\n'));
    const silent = await fakeSmtp('220 fake', () => undefined);
    for (const ep of [refusing, broken, silent]) {
      const r = await new SmtpUpstream(ep, silentLogger()).login('u', 'p', CLIENT);
      assert.equal(r.kind, 'unavailable');
    }
    const slow = await fakeSmtp('220 fake', (line, s) => line.startsWith('EHLO') && s.write(EHLO(['AUTH PLAIN'])));
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const started = Date.now();
    const r = await new SmtpUpstream({ ...slow, connectTimeout: 5000 }, silentLogger()).login('u', 'p', CLIENT, abort.signal);
    assert.deepEqual(r, { kind: 'unavailable', reason: 'aborted' });
    assert.ok(Date.now() - started < 2000);
  });

  test('extensions() falls back to a default while the upstream is down; NUL or CR in credentials never leave', async () => {
    const port = await freePort();
    const up = new SmtpUpstream({ host: '127.0.0.1', port, tls: 'none', verify: true, connectTimeout: 500 }, silentLogger());
    await up.start();
    assert.deepEqual(await up.extensions(), DEFAULT_SMTP_EXTENSIONS);
    assert.deepEqual(await up.login('u', 'a\r\nRSET', CLIENT), { kind: 'bad-password' });
    assert.deepEqual(await up.login('u\0x', 'p', CLIENT), { kind: 'bad-password' });
  });

  test('close() says QUIT; after handOver() it stays out of the client conversation', async () => {
    const quits: string[] = [];
    const ep = await fakeSmtp('220 fake', (line, s) => {
      if (line.startsWith('EHLO')) s.write(EHLO(['AUTH PLAIN']));
      else if (line.startsWith('AUTH')) s.write('235 ok\r\n');
      else if (line === 'QUIT') {
        quits.push(line);
        s.end('221 bye\r\n');
      }
    });
    const up = new SmtpUpstream(ep, silentLogger());
    const a = expectOk(await up.login('u', 'p', CLIENT));
    a.close();
    a.close();
    await new Promise((resolve) => a.socket.once('close', resolve));
    assert.deepEqual(quits, ['QUIT']);
    assert.equal(a.alive, false);
    const b = expectOk(await up.login('u', 'p', CLIENT));
    b.handOver();
    b.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(quits, ['QUIT']);
    b.socket.destroy();
  });

  test('xtext encodes "+", "=", spaces, controls and UTF-8', () => {
    assert.equal(xtext('mail.example.com'), 'mail.example.com');
    assert.equal(xtext('a b+c=d\r\né'), 'a+20b+2Bc+3Dd+0D+0A+C3+A9');
  });
});
