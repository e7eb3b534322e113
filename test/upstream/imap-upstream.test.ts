import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../../src/config/schema.js';
import { isMailotpError } from '../../src/core/errors.js';
import type { VerifyResult } from '../../src/core/login-types.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { connectUpstream } from '../../src/upstream/connect-upstream.js';
import { DEFAULT_IMAP_CAPABILITIES, ImapUpstream, type ImapUpstreamSession } from '../../src/upstream/imap-upstream.js';
import { ResponseReader } from '../../src/upstream/response-reader.js';
import { splice } from '../../src/upstream/splice.js';
import { untrustedCaFile } from '../helpers/certs.js';
import { DEFAULT_DOVECOT_USERS, startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { freePort } from '../helpers/free-port.js';

/** Non-ASCII, so LOGIN has to send it as a literal. */
const WEIRD_PASSWORD = 'p a"s\\s wörd ✓ "x" \\\\';
/** Printable ASCII with the characters a quoted string must escape. */
const QUOTED_PASSWORD = 'sp ace "quo\\ted" \\';
const CLIENT = { ip: '198.51.100.7', port: 40001, name: 'test-client' };

let dv: DovecotHandle;
const cleanups: (() => void)[] = [];

before(async () => {
  dv = await startDovecot({
    users: [...DEFAULT_DOVECOT_USERS, { user: 'erin', password: WEIRD_PASSWORD }, { user: 'frank', password: QUOTED_PASSWORD }],
  });
});

after(async () => {
  for (const c of cleanups) c();
  await dv?.stop();
});

function endpoint(over: Partial<UpstreamEndpoint> = {}): UpstreamEndpoint {
  return { host: '127.0.0.1', port: dv.ports.imaps, tls: 'implicit', verify: true, ca: dv.caFile, connectTimeout: 3000, ...over };
}

const starttls = () => endpoint({ port: dv.ports.imap, tls: 'starttls', servername: 'localhost' });
const plain = () => endpoint({ port: dv.ports.imap, tls: 'none' });

function expectOk(r: VerifyResult<ImapUpstreamSession>): ImapUpstreamSession {
  assert.equal(r.kind, 'ok', `expected ok, got ${JSON.stringify(r)}`);
  const session = (r as { session: ImapUpstreamSession }).session;
  cleanups.push(() => session.close());
  return session;
}


/** A throwaway server playing the upstream with a script; for answers Dovecot never gives. */
async function fakeUpstream(onConnection: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => server.close());
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return (server.address() as net.AddressInfo).port;
}

/** Answers each command line with `reply(tag, rest)`; literals and SASL lines come as their own lines. */
function lineServer(greeting: string, reply: (line: string, s: net.Socket) => void): (s: net.Socket) => void {
  return (s) => {
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
  };
}

describe('ImapUpstream against Dovecot', () => {
  test('logs in over implicit TLS, verifying the certificate against the test CA', async () => {
    const up = new ImapUpstream(endpoint(), silentLogger());
    const session = expectOk(await up.login('alice', 'alice-pass-1', CLIENT));
    assert.ok(session.socket instanceof tls.TLSSocket);
    assert.match(session.loginResponseText, /Logged in/);
    assert.ok(session.postLoginCapabilities?.includes('IMAP4rev1'));
    assert.ok(session.postLoginCapabilities?.includes('IDLE'));
    assert.equal(session.socket.listenerCount('data'), 0);
    assert.ok(session.socket.isPaused());
    assert.ok(session.alive);
  });

  test('logs in over STARTTLS with a servername', async () => {
    const up = new ImapUpstream(starttls(), silentLogger());
    const session = expectOk(await up.login('bob', 'bob-pass-2', CLIENT));
    assert.ok(session.socket instanceof tls.TLSSocket);
    assert.match(session.loginResponseText, /Logged in/);
  });

  test('logs in over plain TCP when tls is none', async () => {
    const up = new ImapUpstream(plain(), silentLogger());
    const session = expectOk(await up.login('carol', 'carol-pass-3', CLIENT));
    assert.ok(!(session.socket instanceof tls.TLSSocket));
  });

  test('a certificate from another CA makes the upstream unavailable', async () => {
    for (const ep of [endpoint({ ca: untrustedCaFile() }), endpoint({ ca: untrustedCaFile(), port: dv.ports.imap, tls: 'starttls' })]) {
      const r = await new ImapUpstream(ep, silentLogger()).login('alice', 'alice-pass-1', CLIENT);
      assert.equal(r.kind, 'unavailable');
      assert.match((r as { reason: string }).reason, /certificate/i);
    }
  });

  test('a name the certificate does not carry makes the upstream unavailable; verify: false accepts it', async () => {
    const wrongName = endpoint({ servername: 'mail.example.org' });
    const r = await new ImapUpstream(wrongName, silentLogger()).login('alice', 'alice-pass-1', CLIENT);
    assert.equal(r.kind, 'unavailable');
    const relaxed = endpoint({ servername: 'mail.example.org', verify: false, ca: undefined });
    expectOk(await new ImapUpstream(relaxed, silentLogger()).login('alice', 'alice-pass-1', CLIENT));
  });

  test("a wrong password is bad-password with Dovecot's own text, and repeated failures stay fast", async () => {
    const up = new ImapUpstream(endpoint(), silentLogger());
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      const r = await up.login('dave', `wrong-${i}`, { ...CLIENT, ip: '203.0.113.50' });
      assert.deepEqual(r, { kind: 'bad-password', reply: '[AUTHENTICATIONFAILED] Authentication failed.' });
    }
    // Neither the failure delay nor the anvil auth penalty may slow the suite down.
    assert.ok(Date.now() - started < 2000, `5 failures took ${Date.now() - started} ms`);
    expectOk(await up.login('dave', 'dave-pass-4', { ...CLIENT, ip: '203.0.113.50' }));
  });

  test('passwords with spaces, quotes, backslashes and UTF-8 work via AUTHENTICATE and LOGIN', async () => {
    for (const auth of ['auto', 'login'] as const) {
      for (const tlsMode of ['implicit', 'none'] as const) {
        const ep = tlsMode === 'none' ? plain() : endpoint();
        const up = new ImapUpstream(ep, silentLogger(), { auth });
        expectOk(await up.login('erin', WEIRD_PASSWORD, CLIENT));
        expectOk(await up.login('frank', QUOTED_PASSWORD, CLIENT));
        const r = await up.login('erin', WEIRD_PASSWORD.slice(0, -1), CLIENT);
        assert.equal(r.kind, 'bad-password', `${auth}/${tlsMode}`);
      }
    }
  });

  test('neither the password nor the AUTHENTICATE payload reaches the log', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const logger = createLogger({ level: 'trace', destination: out });
    const up = new ImapUpstream(endpoint(), logger);
    expectOk(await up.login('erin', WEIRD_PASSWORD, CLIENT));
    await up.login('erin', 'not-it-secret', CLIENT);
    await new ImapUpstream(endpoint(), logger, { auth: 'login' }).login('frank', 'login-secret', CLIENT);
    const payload = Buffer.from(`\0erin\0${WEIRD_PASSWORD}`).toString('base64');
    for (const secret of ['wörd', 'not-it-secret', 'login-secret', payload]) assert.ok(!text.includes(secret), `log contains ${secret}`);
  });

  test("forwards the client's address with ID, so Dovecot logs the real client", async () => {
    const up = new ImapUpstream(endpoint(), silentLogger());
    expectOk(await up.login('bob', 'bob-pass-2', { ip: '::ffff:203.0.113.9', port: 51234, name: 'Thunderbird' }));
    const line = await dv.waitForLog(/imap-login: .*Login: user=<bob>.*rip=203\.0\.113\.9/);
    assert.match(line, /method=PLAIN/);
    await dv.waitForLog(/ID sent: .*name=Thunderbird/);
    await new ImapUpstream(endpoint(), silentLogger()).login('bob', 'nope', { ip: '203.0.113.10', port: 1 });
    await dv.waitForLog(/auth: .*\(bob,203\.0\.113\.10,.*Password mismatch/);
  });

  test("capabilities() returns Dovecot's list as a TLS client sees it", async () => {
    const greeting = await rawGreeting(dv.ports.imap);
    const expected = /\[CAPABILITY ([^\]]+)\]/.exec(greeting)![1]!.split(' ').filter((c) => c !== 'STARTTLS');
    for (const ep of [endpoint(), starttls(), plain()]) {
      const up = new ImapUpstream(ep, silentLogger());
      await up.start();
      const caps = await up.capabilities();
      assert.deepEqual(caps, expected, `${ep.tls}`);
      assert.ok(caps.includes('AUTH=PLAIN') && caps.includes('IDLE') && !caps.includes('STARTTLS'));
    }
  });

  test('capabilities() falls back to a default when the upstream is down, and refreshes once it is back', async () => {
    const port = await freePort();
    const up = new ImapUpstream(endpoint({ port, connectTimeout: 500 }), silentLogger(), { capabilityTtlMs: 1 });
    await up.start();
    assert.deepEqual(await up.capabilities(), [...DEFAULT_IMAP_CAPABILITIES]);
    const live = new ImapUpstream(endpoint(), silentLogger(), { capabilityTtlMs: 1 });
    await live.start();
    const first = await live.capabilities();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Stale: answered from the cache at once while a refresh runs behind it.
    assert.deepEqual(await live.capabilities(), first);
  });

  test('an upstream that is down is unavailable quickly', async () => {
    const port = await freePort();
    const started = Date.now();
    const r = await new ImapUpstream(endpoint({ port }), silentLogger()).login('alice', 'alice-pass-1', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /ECONNREFUSED/);
    assert.ok(Date.now() - started < 1000);
  });

  test('a held session spliced to a client carries commands and responses both ways', async () => {
    await dv.appendMessage('alice', 'From: a@example.org\nTo: alice@example.org\nSubject: spliced\n\nhello through the splice\n');
    const up = new ImapUpstream(endpoint(), silentLogger());
    const session = expectOk(await up.login('alice', 'alice-pass-1', CLIENT));
    const { socket, buffered } = session.handOver();

    // The mail client and mailotp's accepted socket for it.
    const listener = net.createServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => listener.close());
    const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
    const mailClient = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    cleanups.push(() => mailClient.destroy());
    const clientSide = await accepted;

    // A pipelined command the client sent along with its login reaches the upstream first.
    const spliced = splice(clientSide, socket, { clientBuffered: Buffer.from('c1 NOOP\r\n'), upstreamBuffered: buffered });
    const reader = new ResponseReader(mailClient);
    const until = async (tag: string): Promise<string[]> => {
      const lines: string[] = [];
      for (;;) {
        const line = await reader.readLine(3000);
        lines.push(line);
        if (line.startsWith(`${tag} `)) return lines;
      }
    };
    assert.match((await until('c1')).at(-1)!, /^c1 OK/);
    mailClient.write('c2 SELECT INBOX\r\n');
    const select = await until('c2');
    assert.ok(select.includes('* 1 EXISTS'), select.join('\n'));
    mailClient.write('c3 FETCH 1 (BODY[TEXT])\r\n');
    const fetch = await until('c3');
    assert.match(fetch[0]!, /^\* 1 FETCH \(.*BODY\[TEXT\] \{26\}\r\nhello through the splice\r\n\)$/);
    mailClient.write('c4 LOGOUT\r\n');
    const logout = await until('c4');
    assert.match(logout[0]!, /^\* BYE/);
    const counts = await spliced;
    assert.ok(counts.bytesFromClient > 40 && counts.bytesFromUpstream > 100);
    // Handed over: close() must not inject a LOGOUT into the client's conversation.
    session.close();
  });

  test('close() logs out of a held session', async () => {
    const up = new ImapUpstream(endpoint(), silentLogger());
    const session = expectOk(await up.login('carol', 'carol-pass-3', { ip: '203.0.113.77', port: 2 }));
    const closed = new Promise((resolve) => session.socket.once('close', resolve));
    session.close();
    session.close();
    await closed;
    await dv.waitForLog(/imap\(carol\).*Disconnected: Logged out/);
  });

  test('an abort while logging in ends it as unavailable', async () => {
    const port = await fakeUpstream(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const started = Date.now();
    const r = await new ImapUpstream(endpoint({ port, tls: 'none' }), silentLogger()).login('alice', 'x', CLIENT, ac.signal);
    assert.deepEqual(r, { kind: 'unavailable', reason: 'aborted' });
    assert.ok(Date.now() - started < 1000);
  });
});

describe('ImapUpstream: answers Dovecot does not give', () => {
  const fake = async (greeting: string, reply: (line: string, s: net.Socket) => void, over: Partial<UpstreamEndpoint> = {}) => {
    const port = await fakeUpstream(lineServer(greeting, reply));
    return new ImapUpstream(endpoint({ port, tls: 'none', connectTimeout: 500, ...over }), silentLogger());
  };

  test('NO [UNAVAILABLE] is unavailable, other NO codes are bad-password, BAD is unavailable', async () => {
    for (const [answer, kind] of [
      ['NO [UNAVAILABLE] Temporary authentication failure.', 'unavailable'],
      ['NO [SERVERBUG] Internal error', 'unavailable'],
      ['NO [EXPIRED] Password expired', 'bad-password'],
      ['NO Login failed', 'bad-password'],
      ['BAD Error in IMAP command', 'unavailable'],
    ] as const) {
      const up = await fake('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready', (line, s) => {
        const tag = line.split(' ')[0];
        if (/ LOGOUT$/.test(line)) s.end(`* BYE\r\n${tag} OK bye\r\n`);
        else s.write(`${tag} ${answer}\r\n`);
      });
      const r = await up.login('u', 'p', CLIENT);
      assert.equal(r.kind, kind, answer);
      if (kind === 'bad-password') assert.equal((r as { reply: string }).reply, answer.slice(3));
    }
  });

  test('sends the login right behind ID, without waiting for its answer, and reads both answers in order', async () => {
    const seen: string[] = [];
    let idTag = '';
    const up = await fake('* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN SASL-IR] ready', (line, s) => {
      const tag = line.split(' ')[0]!;
      seen.push(line.split(' ')[1]!);
      if (/ LOGOUT$/.test(line)) return void s.end(`* BYE\r\n${tag} OK bye\r\n`);
      if (/ ID /.test(line)) {
        // ID is answered only once the login has arrived: a client that waits for this answer
        // before it sends the login never gets one.
        idTag = tag;
        return;
      }
      assert.ok(idTag, 'ID came first');
      s.write(`* ID ("name" "fake")\r\n${idTag} NO ID refused here\r\n${tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n`);
    });
    const session = expectOk(await up.login('u', 'p', CLIENT));
    session.close();
    assert.deepEqual(seen.slice(0, 2), ['ID', 'AUTHENTICATE']);
  });

  test('a LOGIN with a synchronizing literal behind ID still sends the literal on the continuation', async () => {
    const lines: string[] = [];
    const up = await fake('* OK [CAPABILITY IMAP4rev1 ID] ready', (line, s) => {
      lines.push(line);
      const tag = line.split(' ')[0]!;
      if (/ LOGOUT$/.test(line)) return void s.end(`* BYE\r\n${tag} OK bye\r\n`);
      if (/ ID /.test(line)) return void s.write(`${tag} OK ID completed\r\n`);
      if (/ LOGIN /.test(line)) return void s.write('+ go ahead\r\n');
      // The literal's line: the password, then the answer to the LOGIN.
      const loginTag = lines.find((l) => / LOGIN /.test(l))!.split(' ')[0];
      s.write(`${loginTag} OK Logged in\r\n`);
    });
    const session = expectOk(await up.login('u', 'pässword', CLIENT));
    session.close();
    assert.match(lines[1]!, /^m\d+ LOGIN "u" \{9\}$/);
    assert.equal(lines[2], 'pässword');
  });

  test('an upstream that offers UNAUTHENTICATE after login is refused (the client could switch users unseen)', async () => {
    let loggedOut = false;
    const up = await fake('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready', (line, s) => {
      const tag = line.split(' ')[0];
      if (/ LOGOUT$/.test(line)) {
        loggedOut = true;
        s.end(`* BYE\r\n${tag} OK bye\r\n`);
      } else s.write(`${tag} OK [CAPABILITY IMAP4rev1 IDLE UNAUTHENTICATE] Logged in\r\n`);
    });
    const r = await up.login('u', 'p', CLIENT);
    assert.equal(r.kind, 'unavailable');
    const end = Date.now() + 2000;
    while (!loggedOut && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
    assert.ok(loggedOut, 'the upstream session was logged out');
  });

  test('PREAUTH and BYE greetings, garbage and silence are unavailable', async () => {
    for (const greeting of ['* PREAUTH logged in already', '* BYE too busy', 'HTTP/1.1 400 Bad Request']) {
      const up = await fake(greeting, () => undefined);
      assert.equal((await up.login('u', 'p', CLIENT)).kind, 'unavailable', greeting);
    }
    const silent = await fakeUpstream(() => undefined);
    const started = Date.now();
    const r = await new ImapUpstream(endpoint({ port: silent, tls: 'none', connectTimeout: 200 }), silentLogger()).login('u', 'p', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.ok(Date.now() - started < 1000);
  });

  test('LOGIN without LITERAL+ waits for "+" before each literal; own tags are used', async () => {
    const seen: string[] = [];
    const up = await fake('* OK [CAPABILITY IMAP4rev1 LOGINDISABLED-NOT] ready', (line, s) => {
      seen.push(line);
      if (/\{\d+\}$/.test(line)) s.write('+ go ahead\r\n');
      else if (line === 'pässword') s.write('* CAPABILITY IMAP4rev1 IDLE\r\nm1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n* 1 EXISTS\r\n');
    });
    const r = await up.login('üser', 'pässword', CLIENT);
    const session = expectOk(r);
    assert.deepEqual(seen, [`m1 LOGIN {${Buffer.byteLength('üser')}}`, `üser {${Buffer.byteLength('pässword')}}`, 'pässword']);
    assert.deepEqual(session.postLoginCapabilities, ['IMAP4rev1', 'IDLE']);
    assert.equal(session.loginResponseText, '[CAPABILITY IMAP4rev1 IDLE] Logged in');
    // Sent right behind the OK: it belongs to the client, not to mailotp.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const rest = Buffer.concat([session.buffered, (session.socket.read() as Buffer | null) ?? Buffer.alloc(0)]);
    assert.equal(rest.toString(), '* 1 EXISTS\r\n');
  });

  test('data injected after the STARTTLS answer is refused', async () => {
    const up = await fake(
      '* OK [CAPABILITY IMAP4rev1 STARTTLS] ready',
      (line, s) => {
        if (line === 'm1 STARTTLS') s.write('m1 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n');
      },
      { tls: 'starttls' },
    );
    const r = await up.login('u', 'p', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /after its STARTTLS answer/);
  });

  test('an endless line is a protocol error, not unbounded memory', async () => {
    const port = await fakeUpstream((s) => s.write(Buffer.alloc(200 * 1024, 'x')));
    const r = await new ImapUpstream(endpoint({ port, tls: 'none' }), silentLogger()).login('u', 'p', CLIENT);
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /longer than/);
  });
});

describe('ResponseReader', () => {
  const feed = (chunks: (string | Buffer)[]) => {
    const s = new PassThrough();
    const reader = new ResponseReader(s, { maxLineLength: 1024 });
    for (const c of chunks) s.write(c);
    return { s, reader };
  };

  test('splits CRLF lines across chunk borders and keeps literals inside the logical line', async () => {
    const { reader } = feed(['* OK hel', 'lo\r\n* ID ("name" {7}\r\nDove', 'cot)\r\n* 2 FETCH (BODY[] {0}\r\n)\r\na1 O', 'K done\r\nrest']);
    assert.equal(await reader.readLine(100), '* OK hello');
    assert.equal(await reader.readLine(100), '* ID ("name" {7}\r\nDovecot)');
    assert.equal(await reader.readLine(100), '* 2 FETCH (BODY[] {0}\r\n)');
    assert.equal(await reader.readLine(100), 'a1 OK done');
    await assert.rejects(reader.readLine(20), (e) => isMailotpError(e, 'MAILOTP_ERR_UPSTREAM_UNAVAILABLE'));
    assert.equal(reader.takeBuffered().toString(), 'rest');
  });

  test('takeBuffered() hands back unread lines and leaves later bytes in the paused stream', async () => {
    const { s, reader } = feed(['a1 OK\r\n* 1 EXISTS\r\n']);
    assert.equal(await reader.readLine(100), 'a1 OK');
    assert.equal(reader.takeBuffered().toString(), '* 1 EXISTS\r\n');
    assert.equal(s.listenerCount('data'), 0);
    s.write('* 2 EXISTS\r\n');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((s.read() as Buffer).toString(), '* 2 EXISTS\r\n');
  });

  test('caps line length, literals included', async () => {
    const long = feed([`* OK {2000}\r\n${'x'.repeat(2000)}\r\n`]).reader;
    await assert.rejects(long.readLine(100), (e) => isMailotpError(e, 'MAILOTP_ERR_UPSTREAM_PROTOCOL'));
    const noEol = feed(['y'.repeat(1500)]).reader;
    await assert.rejects(noEol.readLine(100), (e) => isMailotpError(e, 'MAILOTP_ERR_UPSTREAM_PROTOCOL'));
  });

  test('a close is reported after the lines that came before it', async () => {
    const { s, reader } = feed(['* BYE shutting down\r\n']);
    s.end();
    assert.equal(await reader.readLine(100), '* BYE shutting down');
    await assert.rejects(reader.readLine(100), /closed/);
  });
});

describe('connectUpstream', () => {
  test('errors are MAILOTP_ERR_UPSTREAM_UNAVAILABLE: refused, missing CA file, timeout', async () => {
    const port = await freePort();
    await assert.rejects(connectUpstream(endpoint({ port })), (e) => isMailotpError(e, 'MAILOTP_ERR_UPSTREAM_UNAVAILABLE'));
    await assert.rejects(connectUpstream(endpoint({ ca: '/nonexistent/ca.pem' })), /cannot read CA file/);
    // A server that never finishes the TLS handshake.
    const silent = await fakeUpstream(() => undefined);
    const started = Date.now();
    await assert.rejects(connectUpstream(endpoint({ port: silent, connectTimeout: 200 })), /no connection within 200 ms/);
    assert.ok(Date.now() - started < 1000);
  });

  test('a CA file rewritten in place takes effect at the next connection, in both directions', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-ca-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const caFile = path.join(dir, 'ca.pem');
    const [good, other] = [readFileSync(dv.caFile), readFileSync(untrustedCaFile())];
    const connect = async () => (await connectUpstream(endpoint({ ca: caFile }))).destroy();
    writeFileSync(caFile, good);
    await connect();
    await connect();
    writeFileSync(caFile, other);
    await assert.rejects(connect(), /certificate/i);
    writeFileSync(caFile, 'not a certificate\n');
    await assert.rejects(connect(), /certificate/i);
    writeFileSync(caFile, good);
    await connect();
    rmSync(caFile);
    await assert.rejects(connect(), /cannot read CA file/);
  });
});

function rawGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('data', (c: Buffer) => {
      resolve(c.toString());
      s.destroy();
    });
    s.once('error', reject);
  });
}
