import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { testCerts } from '../helpers/certs.js';
import { decide, deviceApi, enrol, imapClient, python, PY_IMAP_LOGIN, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

const USERS = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob-pass-2' },
  { user: 'carol', password: 'carol-pass-3' },
  { user: 'dave', password: 'dave-pass-4' },
  { user: 'erin', password: 'erin pass "5" \\ é' },
  { user: 'frank', password: 'frank-pass-6' },
];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;

/** Reads from a socket until the text matches. */
function readUntil(sock: net.Socket | tls.TLSSocket, re: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (re.test(buf)) {
        done();
        resolve(buf);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timeout waiting for ${re}; got ${JSON.stringify(buf)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      sock.off('data', onData);
    };
    sock.on('data', onData);
  });
}

describe('IMAP behind daemon OTP (real Dovecot, real binary, SQLite store)', () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  const tokens: Record<string, string> = {};

  before(async () => {
    dovecot = await startDovecot({ users: USERS });
    await dovecot.appendMessage('alice', 'From: a@example.com\r\nSubject: hello\r\n\r\nbody\r\n');
    m = await startMailotp({ dovecot });
    for (const u of ['alice', 'bob', 'carol', 'dave']) tokens[u] = await enrol(m, u);
  });
  after(async () => {
    await m?.stop();
    await dovecot?.stop();
  });

  it('holds the login until the phone approves, then the session is the upstream one; the window lets the client back in', async () => {
    const client = imapClient(m.imaps, 'alice', pw('alice'), { localAddress: '127.0.0.2' });
    const connecting = client.connect();
    const req = await waitForRequest(m.portal, tokens.alice!);
    assert.equal(req.type, 'connection');
    assert.equal(req.user, 'alice');
    assert.equal(req.protocol, 'imap');
    assert.equal(req.clientIp, '127.0.0.2');
    assert.ok(Date.parse(req.expiresAt) - Date.parse(req.createdAt) >= 299_000, 'answerable for 5 minutes');
    const answer = await decide(m.portal, tokens.alice!, req.id, 'approve');
    assert.deepEqual(answer, { status: 200, json: { status: 'approved' } });
    await connecting;
    const box = await client.mailboxOpen('INBOX');
    assert.equal(box.exists, 1, 'the mailbox is the upstream one');
    const msg = await client.fetchOne('1', { envelope: true });
    assert.equal(msg && msg.envelope?.subject, 'hello');
    await client.logout();

    const again = imapClient(m.imaps, 'alice', pw('alice'), { localAddress: '127.0.0.2' });
    await again.connect();
    await again.logout();
    const pending = await deviceApi(m.portal, tokens.alice!, 'GET', '/api/v1/device/requests');
    assert.deepEqual(pending.json, { requests: [] }, 'no new request inside the window');

    const list = await m.cli(['approvals', 'list', '--user', 'alice', '--json']);
    const approvals = (JSON.parse(list.stdout) as { approvals: { user: string; clientIp: string; approvedAt: string; expiresAt: string }[] }).approvals;
    assert.equal(approvals.length, 1);
    assert.equal(approvals[0]!.clientIp, '127.0.0.2');
    assert.ok(Math.abs(Date.parse(approvals[0]!.expiresAt) - Date.parse(approvals[0]!.approvedAt) - 86_400_000) < 1000);
  });

  it('binds the approval to the client IP: the same user from another address is asked again', async () => {
    const client = imapClient(m.imaps, 'alice', pw('alice'), { localAddress: '127.0.0.3' });
    const connecting = client.connect().then(
      () => 'ok',
      (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
    );
    const req = await waitForRequest(m.portal, tokens.alice!, (r) => r.clientIp === '127.0.0.3');
    await decide(m.portal, tokens.alice!, req.id, 'deny');
    assert.equal(await connecting, 'AUTHENTICATIONFAILED');
    client.close();
  });

  it("lets Python's imaplib in after a tap (a client we did not write)", async () => {
    const run = python(PY_IMAP_LOGIN, ['127.0.0.1', String(m.imaps), testCerts().caFile, 'bob', pw('bob'), '127.0.0.6']);
    const req = await waitForRequest(m.portal, tokens.bob!);
    assert.equal(req.clientIp, '127.0.0.6');
    await decide(m.portal, tokens.bob!, req.id, 'approve');
    const out = await run;
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^LOGIN OK /m);
    assert.match(out.stdout, /^SELECT OK 0$/m);
  });

  it('answers a denied request with the authentication-failed form', async () => {
    const run = python(PY_IMAP_LOGIN, ['127.0.0.1', String(m.imaps), testCerts().caFile, 'carol', pw('carol'), '127.0.0.7']);
    const req = await waitForRequest(m.portal, tokens.carol!);
    await decide(m.portal, tokens.carol!, req.id, 'deny');
    const out = await run;
    assert.match(out.stdout, /ERROR .*AUTHENTICATIONFAILED/);
    const again = await decide(m.portal, tokens.carol!, req.id, 'approve');
    assert.equal(again.status, 409);
  });

  it('refuses a wrong password at once with the upstream refusal, and opens no request', async () => {
    const started = Date.now();
    const client = imapClient(m.imaps, 'dave', 'not-the-password', { localAddress: '127.0.0.8' });
    const err = (await client.connect().then(
      () => null,
      (e: unknown) => e,
    )) as { serverResponseCode?: string; authenticationFailed?: boolean } | null;
    assert.ok(err, 'login must fail');
    assert.equal(err.serverResponseCode, 'AUTHENTICATIONFAILED');
    assert.ok(Date.now() - started < 8000, 'not held');
    const pending = await deviceApi(m.portal, tokens.dave!, 'GET', '/api/v1/device/requests');
    assert.deepEqual(pending.json, { requests: [] });
    assert.ok(!m.events().some((e) => e.event === 'request.opened' && e.user === 'dave'));
  });

  it('parallel logins of one client share one request; one tap releases them all', async () => {
    const clients = Array.from({ length: 4 }, () => imapClient(m.imaps, 'dave', pw('dave'), { localAddress: '127.0.0.9' }));
    const all = Promise.all(clients.map((c) => c.connect()));
    const req = await waitForRequest(m.portal, tokens.dave!);
    await m.waitForLog((e) => e.event === 'request.joined' && e.user === 'dave');
    const list = await deviceApi(m.portal, tokens.dave!, 'GET', '/api/v1/device/requests');
    assert.equal((list.json as { requests: unknown[] }).requests.length, 1);
    await decide(m.portal, tokens.dave!, req.id, 'approve');
    await all;
    for (const c of clients) await c.logout();
    assert.equal(m.events().filter((e) => e.event === 'request.opened' && e.user === 'dave').length, 1);
  });

  it('revoking approvals with the CLI makes the next login ask again', async () => {
    const rev = await m.cli(['approvals', 'revoke', 'dave', '--ip', '127.0.0.9']);
    assert.equal(rev.code, 0, rev.stderr);
    assert.match(rev.stdout, /revoked 1 approval/);
    const client = imapClient(m.imaps, 'dave', pw('dave'), { localAddress: '127.0.0.9' });
    const connecting = client.connect().catch(() => undefined);
    const req = await waitForRequest(m.portal, tokens.dave!);
    await decide(m.portal, tokens.dave!, req.id, 'deny');
    await connecting;
    client.close();
  });

  it('on a STARTTLS port refuses login before TLS, discards injected plaintext, and works after STARTTLS', async () => {
    const sock = net.connect(m.imapStarttls, '127.0.0.1');
    const greeting = await readUntil(sock, /\r\n/);
    assert.match(greeting, /^\* OK \[CAPABILITY [^\]]*STARTTLS[^\]]*\]/);
    assert.match(greeting, /LOGINDISABLED/);
    assert.doesNotMatch(greeting, /AUTH=/);
    sock.write(`a1 LOGIN erin "x"\r\n`);
    assert.match(await readUntil(sock, /a1 .*\r\n/), /a1 NO \[PRIVACYREQUIRED\]/);
    // The injected command after STARTTLS must not be executed inside the TLS session.
    sock.write('a2 STARTTLS\r\na3 CAPABILITY\r\n');
    assert.match(await readUntil(sock, /a2 OK.*\r\n/), /a2 OK/);
    const secure = tls.connect({ socket: sock, ca: testCerts().ca, servername: 'localhost' });
    await new Promise<void>((res, rej) => secure.once('secureConnect', res).once('error', rej));
    secure.write('a4 CAPABILITY\r\n');
    const caps = await readUntil(secure, /a4 OK.*\r\n/);
    assert.doesNotMatch(caps, /a3/, 'plaintext sent before the handshake was discarded');
    assert.match(caps, /AUTH=PLAIN/);
    assert.doesNotMatch(caps, /LOGINDISABLED|STARTTLS/);
    secure.write(`a5 LOGIN frank frank-pass-6\r\n`);
    assert.match(await readUntil(secure, /a5 .*\r\n/), /a5 OK /);
    secure.end();
  });

  it('accepts AUTHENTICATE PLAIN with SASL-IR and passes commands pipelined after the login to the upstream', async () => {
    const sock = tls.connect({ port: m.imaps, host: '127.0.0.1', ca: testCerts().ca, servername: 'localhost' });
    await readUntil(sock, /\r\n/);
    const ir = Buffer.from(`\0erin\0${pw('erin')}`).toString('base64');
    sock.write(`p1 AUTHENTICATE PLAIN ${ir}\r\np2 SELECT INBOX\r\np3 LOGOUT\r\n`);
    const out = await readUntil(sock, /p3 OK.*\r\n/);
    assert.match(out, /p1 OK /);
    assert.match(out, /p2 OK \[READ-WRITE\]/);
    sock.destroy();
  });
});
