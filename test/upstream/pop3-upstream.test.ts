import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../../src/config/schema.js';
import type { VerifyResult } from '../../src/core/login-types.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { DEFAULT_POP3_CAPABILITIES, Pop3Upstream, type Pop3UpstreamSession } from '../../src/upstream/pop3-upstream.js';
import { ResponseReader } from '../../src/upstream/response-reader.js';
import { DEFAULT_DOVECOT_USERS, startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { freePort } from '../helpers/free-port.js';

/** Spaces, quotes and UTF-8: PASS takes the rest of the line, AUTH PLAIN base64 of the bytes. */
const WEIRD_PASSWORD = 'p a"s\\s wörd ✓ ';
const CLIENT = { ip: '198.51.100.7', port: 40001 };

let dv: DovecotHandle;
const cleanups: (() => void)[] = [];

before(async () => {
  dv = await startDovecot({ users: [...DEFAULT_DOVECOT_USERS, { user: 'erin', password: WEIRD_PASSWORD }] });
});

after(async () => {
  for (const c of cleanups) c();
  await dv?.stop();
});

function endpoint(over: Partial<UpstreamEndpoint> = {}): UpstreamEndpoint {
  return { host: '127.0.0.1', port: dv.ports.pop3s, tls: 'implicit', verify: true, ca: dv.caFile, servername: 'localhost', connectTimeout: 3000, ...over };
}
const starttls = () => endpoint({ port: dv.ports.pop3, tls: 'starttls' });
const plain = () => endpoint({ port: dv.ports.pop3, tls: 'none' });

function expectOk(r: VerifyResult<Pop3UpstreamSession>): Pop3UpstreamSession {
  assert.equal(r.kind, 'ok', `expected ok, got ${JSON.stringify(r)}`);
  const session = (r as { session: Pop3UpstreamSession }).session;
  cleanups.push(() => session.close());
  return session;
}


/** Sends one command on a logged-in session socket and reads its answer (multi-line up to "."). */
async function converse(socket: net.Socket, reader: ResponseReader, line: string, multi = false): Promise<string[]> {
  socket.write(`${line}\r\n`);
  const out = [await reader.readLine(3000)];
  if (multi && out[0]!.startsWith('+OK')) while (out.at(-1) !== '.') out.push(await reader.readLine(3000));
  return out;
}

describe('Pop3Upstream against Dovecot', () => {
  test('logs in over implicit TLS, STLS and plain TCP; the session is paused with nothing read', async () => {
    for (const ep of [endpoint(), starttls(), plain()]) {
      const session = expectOk(await new Pop3Upstream(ep, silentLogger()).login('alice', 'alice-pass-1', CLIENT));
      assert.equal(session.loginResponseText, 'Logged in.');
      assert.equal(session.socket instanceof tls.TLSSocket, ep.tls !== 'none', ep.tls);
      assert.equal(session.socket.listenerCount('data'), 0);
      assert.ok(session.socket.isPaused());
      assert.equal(session.buffered.length, 0);
      assert.ok(session.alive);
    }
  });

  test('passwords with spaces and UTF-8 work with AUTH PLAIN and with USER/PASS', async () => {
    for (const auth of ['auto', 'user'] as const) {
      const up = new Pop3Upstream(endpoint(), silentLogger(), { auth });
      expectOk(await up.login('erin', WEIRD_PASSWORD, CLIENT));
      const r = await up.login('erin', WEIRD_PASSWORD.trimEnd(), CLIENT);
      assert.deepEqual(r, { kind: 'bad-password', reply: '[AUTH] Authentication failed.' }, auth);
    }
  });

  test('neither the password nor the AUTH payload reaches the log', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const logger = createLogger({ level: 'trace', destination: out });
    expectOk(await new Pop3Upstream(endpoint(), logger).login('erin', WEIRD_PASSWORD, CLIENT));
    await new Pop3Upstream(endpoint(), logger, { auth: 'user' }).login('bob', 'user-pass-secret', CLIENT);
    const payload = Buffer.from(`\0erin\0${WEIRD_PASSWORD}`).toString('base64');
    for (const secret of ['wörd', 'user-pass-secret', payload]) assert.ok(!text.includes(secret), `log contains ${secret}`);
  });

  test("forwards the client's address with XCLIENT (offered in Dovecot's greeting), so Dovecot logs the real client", async () => {
    expectOk(await new Pop3Upstream(endpoint(), silentLogger()).login('bob', 'bob-pass-2', { ip: '::ffff:203.0.113.9', port: 51234 }));
    assert.match(await dv.waitForLog(/pop3-login: .*Login: user=<bob>.*rip=203\.0\.113\.9/), /method=PLAIN/);
    await new Pop3Upstream(starttls(), silentLogger(), { auth: 'user' }).login('bob', 'nope', { ip: '2001:db8::5', port: 1 });
    await dv.waitForLog(/auth: .*\(bob,2001:db8::5,.*Password mismatch/);
  });

  test("capabilities() returns Dovecot's CAPA as a TLS client sees it, without STLS", async () => {
    for (const ep of [endpoint(), starttls()]) {
      const up = new Pop3Upstream(ep, silentLogger());
      await up.start();
      const caps = await up.capabilities();
      for (const c of ['TOP', 'UIDL', 'PIPELINING', 'RESP-CODES', 'USER', 'SASL PLAIN LOGIN']) assert.ok(caps.includes(c), `${ep.tls}: ${c} in ${caps.join(',')}`);
      assert.ok(!caps.includes('STLS'));
    }
  });

  test('an upstream that is down: unavailable at once, default capabilities', async () => {
    const port = await freePort();
    const up = new Pop3Upstream(endpoint({ port, connectTimeout: 500 }), silentLogger());
    await up.start();
    assert.deepEqual(await up.capabilities(), [...DEFAULT_POP3_CAPABILITIES]);
    const started = Date.now();
    const r = await up.login('alice', 'alice-pass-1', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /ECONNREFUSED/);
    assert.ok(Date.now() - started < 1000);
  });

  test('a held session carries RETR byte for byte; close() after hand-over sends nothing', async () => {
    const raw = 'From: a@example.org\r\nSubject: pop3 upstream\r\n\r\n.starts with a dot\r\nend\r\n';
    await dv.appendMessage('carol', raw);
    const session = expectOk(await new Pop3Upstream(endpoint(), silentLogger()).login('carol', 'carol-pass-3', CLIENT));
    const { socket } = session.handOver();
    const reader = new ResponseReader(socket, { imapLiterals: false });
    assert.deepEqual(await converse(socket, reader, 'STAT'), [`+OK 1 ${Buffer.byteLength(raw)}`]);
    const retr = await converse(socket, reader, 'RETR 1', true);
    assert.equal(retr.slice(1, -1).join('\r\n') + '\r\n', raw.replace('\r\n.starts', '\r\n..starts'), 'dot-stuffed by the upstream');
    session.close();
    assert.deepEqual(await converse(socket, reader, 'NOOP'), ['+OK'], 'close() did not QUIT the handed-over session');
    socket.destroy();
  });

  test('close() sends QUIT to a held session', async () => {
    const session = expectOk(await new Pop3Upstream(endpoint(), silentLogger()).login('dave', 'dave-pass-4', { ip: '203.0.113.77', port: 2 }));
    const closed = new Promise((resolve) => session.socket.once('close', resolve));
    session.close();
    session.close();
    await closed;
    await dv.waitForLog(/pop3\(dave\).*Disconnected: Logged out/);
  });
});

/** A scripted upstream for answers Dovecot does not give here; records every line it got. */
async function fakeUpstream(greeting: string, reply: (line: string, s: net.Socket) => void): Promise<{ port: number; lines: string[] }> {
  const lines: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.write(`${greeting}\r\n`);
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        lines.push(line);
        if (line === 'QUIT') s.end('+OK bye\r\n');
        else reply(line, s);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, lines };
}

const CAPA = '+OK\r\nTOP\r\nUSER\r\nSASL PLAIN\r\n.\r\n';

describe('Pop3Upstream: answers Dovecot does not give', () => {
  const up = (port: number) => new Pop3Upstream(endpoint({ port, tls: 'none', connectTimeout: 500 }), silentLogger());

  test('[IN-USE], [SYS/TEMP] and [LOGIN-DELAY] are unavailable with the upstream line for the client; [AUTH] and plain -ERR are bad-password', async () => {
    for (const [answer, kind] of [
      ['[IN-USE] Mailbox is locked by another POP3 session', 'unavailable'],
      ['[SYS/TEMP] Temporary authentication failure', 'unavailable'],
      ['[LOGIN-DELAY] Wait 15 minutes', 'unavailable'],
      ['[AUTH] Authentication failed.', 'bad-password'],
      ['Invalid login', 'bad-password'],
    ] as const) {
      const fake = await fakeUpstream('+OK ready', (line, s) => s.write(line === 'CAPA' ? CAPA : `-ERR ${answer}\r\n`));
      const r = await up(fake.port).login('u', 'p', CLIENT);
      assert.equal(r.kind, kind, answer);
      assert.equal((r as { reply?: string }).reply, answer);
      const end = Date.now() + 2000;
      while (fake.lines.at(-1) !== 'QUIT' && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
      assert.equal(fake.lines.at(-1), 'QUIT', 'the refused connection is ended politely');
    }
  });

  test('XCLIENT only when offered (in CAPA or as [XCLIENT] in the greeting); USER/PASS when SASL PLAIN is not', async () => {
    const plainCapa = '+OK\r\nUSER\r\n.\r\n';
    const a = await fakeUpstream('+OK ready', (line, s) => s.write(line === 'CAPA' ? plainCapa : '+OK\r\n'));
    expectOk(await up(a.port).login('u', 'p w', CLIENT));
    assert.deepEqual(a.lines, ['CAPA', 'USER u', 'PASS p w']);

    const b = await fakeUpstream('+OK ready', (line, s) => s.write(line === 'CAPA' ? '+OK\r\nXCLIENT\r\nSASL PLAIN\r\n.\r\n' : '+OK\r\n'));
    expectOk(await up(b.port).login('u', 'p', { ip: '::ffff:192.0.2.1', port: 7 }));
    assert.deepEqual(b.lines, ['CAPA', 'XCLIENT ADDR=192.0.2.1 PORT=7', `AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`]);

    const c = await fakeUpstream('+OK [XCLIENT] Dovecot ready.', (line, s) => s.write(line === 'CAPA' ? plainCapa : line.startsWith('XCLIENT') ? '-ERR nope\r\n' : '+OK\r\n'));
    expectOk(await up(c.port).login('u', 'p', CLIENT));
    assert.deepEqual(c.lines, ['CAPA', 'XCLIENT ADDR=198.51.100.7 PORT=40001', 'USER u', 'PASS p'], 'a refused XCLIENT does not stop the login');
  });

  test('an RFC 1939 server without CAPA gets USER/PASS; one offering neither USER nor SASL PLAIN is unavailable', async () => {
    const old = await fakeUpstream('+OK ready', (line, s) => s.write(line === 'CAPA' ? '-ERR unknown command\r\n' : '+OK\r\n'));
    expectOk(await up(old.port).login('u', 'p', CLIENT));
    assert.deepEqual(old.lines, ['CAPA', 'USER u', 'PASS p']);
    const none = await fakeUpstream('+OK ready', (line, s) => s.write(line === 'CAPA' ? '+OK\r\nTOP\r\n.\r\n' : '+OK\r\n'));
    const r = await up(none.port).login('u', 'p', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.ok(!none.lines.some((l) => l.startsWith('USER') || l.startsWith('AUTH')));
  });

  test('-ERR greetings, garbage, a SASL continuation and silence are unavailable', async () => {
    for (const greeting of ['-ERR [SYS/TEMP] too busy', '* OK IMAP here', 'HTTP/1.1 400 Bad Request']) {
      const fake = await fakeUpstream(greeting, () => undefined);
      assert.equal((await up(fake.port).login('u', 'p', CLIENT)).kind, 'unavailable', greeting);
    }
    const cont = await fakeUpstream('+OK ready', (line, s) => s.write(line === 'CAPA' ? CAPA : '+ \r\n'));
    assert.equal((await up(cont.port).login('u', 'p', CLIENT)).kind, 'unavailable');
    const silent = await fakeUpstream('+OK ready', () => undefined);
    const started = Date.now();
    assert.equal((await up(silent.port).login('u', 'p', CLIENT)).kind, 'unavailable');
    assert.ok(Date.now() - started < 2000);
  });

  test('an abort while logging in ends it as unavailable; CR/LF/NUL in credentials never reach the upstream', async () => {
    const fake = await fakeUpstream('+OK ready', () => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    assert.deepEqual(await up(fake.port).login('u', 'p', CLIENT, ac.signal), { kind: 'unavailable', reason: 'aborted' });
    const untouched = await fakeUpstream('+OK ready', () => undefined);
    for (const [u, p] of [['u\r\nDELE 1', 'p'], ['u', 'p\r\nDELE 1'], ['u', 'p\0']]) {
      assert.deepEqual(await up(untouched.port).login(u!, p!, CLIENT), { kind: 'bad-password' });
    }
    assert.deepEqual(untouched.lines, []);
  });

  test('a CAPA that never ends is a protocol error, not unbounded memory', async () => {
    const fake = await fakeUpstream('+OK ready', (line, s) => {
      if (line === 'CAPA') s.write(`+OK\r\n${'X-CAP\r\n'.repeat(500)}`);
    });
    const r = await up(fake.port).login('u', 'p', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /too long/);
  });
});
