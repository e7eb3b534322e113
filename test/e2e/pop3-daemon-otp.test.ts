import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { decide, deviceApi, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { bindDevice, curlPop3, curlSent, pyPop3, RawPop3 } from './pop3-kit.js';

/** alice and bob have a device (two-factor on); grace has none and logs in as before. */
const USERS = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob pass "2" é' },
  { user: 'grace', password: 'grace-pass-3' },
];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;

/** Exact bytes, with lines a POP3 server must dot-stuff and a client must un-stuff. */
const MESSAGE = 'From: a@example.com\r\nTo: alice@example.com\r\nSubject: pop3 through mailotp\r\n\r\n.a line starting with a dot\r\n..two dots\r\nend\r\n';
const TEMP = '-ERR [SYS/TEMP] Still waiting for approval: approve this connection on your phone, then retry.';
const AUTH_FAILED = '-ERR [AUTH] Authentication failed.';
/** Approvals and requests are per user and client IP: each test takes its own source address. */
const from = (ip: string) => (r: { clientIp: string }) => r.clientIp === ip;

// The hold-timeout case waits out its holdTime on its own instance, alongside the others.
describe('POP3 behind daemon OTP (real Dovecot, real binary, poplib and curl)', { concurrency: 2 }, () => {
  let dovecot: DovecotHandle;
  /** holdTime 10s: taps land in time. */
  let m: MailotpProcess;
  /** holdTime 2.5s: for the login that times out. */
  let short: MailotpProcess;
  const tokens: Record<string, string> = {};
  let shortToken = '';

  const opened = (p: MailotpProcess, user: string, ip: string) =>
    p.events().filter((e) => e.event === 'request.opened' && e.user === user && e.clientIp === ip).length;
  const pending = async (user: string) => {
    const r = await deviceApi(m.portal, tokens[user]!, 'GET', '/api/v1/device/requests');
    return (r.json as { requests: unknown[] }).requests;
  };

  before(async () => {
    dovecot = await startDovecot({ users: USERS });
    await dovecot.appendMessage('alice', MESSAGE);
    const daemonOtp = { enforce: 'bound' };
    [m, short] = await Promise.all([startMailotp({ dovecot, daemonOtp }), startMailotp({ dovecot, daemonOtp: { ...daemonOtp, holdTime: '2500ms' } })]);
    [tokens.alice, tokens.bob, shortToken] = await Promise.all([bindDevice(m, 'alice'), bindDevice(m, 'bob'), bindDevice(short, 'alice')]);
  });
  after(async () => {
    await Promise.all([m?.stop(), short?.stop()]);
    await dovecot?.stop();
  });

  describe('approve, deny, windows, STLS, SASL', { concurrency: 1 }, () => {
    it('holds a poplib login (POP3_SSL) until the tap, then RETR returns the exact message; Dovecot sees the client address', async () => {
      const run = pyPop3('ssl', m.pop3s, 'alice', pw('alice'), '127.0.0.5');
      const req = await waitForRequest(m.portal, tokens.alice!);
      assert.equal(req.type, 'connection');
      assert.equal(req.protocol, 'pop3');
      assert.equal(req.user, 'alice');
      assert.equal(req.clientIp, '127.0.0.5');
      assert.deepEqual(await decide(m.portal, tokens.alice!, req.id, 'approve'), { status: 200, json: { status: 'approved' } });
      const out = await run;
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.steps.WELCOME, '+OK mailotp ready.');
      assert.equal(out.steps.PASS, '+OK Logged in.');
      assert.equal(out.steps.STAT, `1 ${Buffer.byteLength(MESSAGE)}`);
      assert.equal(Buffer.from(out.steps.RETR ?? '', 'base64').toString('latin1'), MESSAGE);
      assert.match(out.steps.QUIT ?? '', /^\+OK/);
      // mailotp connects from 127.0.0.1; XCLIENT told Dovecot who the client really is.
      await dovecot.waitForLog(/pop3-login: .*Login: user=<alice>.*rip=127\.0\.0\.5/);
    });

    it('lets curl list and retrieve inside the approval window, with no new request', async () => {
      const list = await curlPop3(m.pop3s, 'alice', pw('alice'), { src: '127.0.0.5' });
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, `1 ${Buffer.byteLength(MESSAGE)}\r\n`);
      const one = await curlPop3(m.pop3s, 'alice', pw('alice'), { src: '127.0.0.5', path: '1' });
      assert.equal(one.code, 0, one.stderr);
      assert.equal(one.stdout, MESSAGE);
      assert.deepEqual(await pending('alice'), []);
      assert.equal(opened(m, 'alice', '127.0.0.5'), 1);
    });

    it('answers a denied request with -ERR [AUTH]', async () => {
      const run = pyPop3('ssl', m.pop3s, 'alice', pw('alice'), '127.0.0.7');
      const req = await waitForRequest(m.portal, tokens.alice!, from('127.0.0.7'));
      await decide(m.portal, tokens.alice!, req.id, 'deny');
      const out = await run;
      assert.equal(out.steps.ERROR, AUTH_FAILED, out.stdout + out.stderr);
      assert.equal((await decide(m.portal, tokens.alice!, req.id, 'approve')).status, 409);
    });

    it('refuses a wrong password at once with -ERR [AUTH] and opens no request', async () => {
      const started = Date.now();
      const out = await pyPop3('ssl', m.pop3s, 'bob', 'not-the-password', '127.0.0.8');
      assert.equal(out.steps.ERROR, AUTH_FAILED, out.stdout + out.stderr);
      // Held, it would have waited holdTime (10 s) and ended in [SYS/TEMP].
      assert.ok(Date.now() - started < 8000, 'not held');
      assert.deepEqual(await pending('bob'), []);
      assert.equal(opened(m, 'bob', '127.0.0.8'), 0);
    });

    it('an IMAP approval lets POP3 in from the same IP: one approval per user and client IP, whatever the protocol', async () => {
      const client = imapClient(m.imaps, 'bob', pw('bob'), { localAddress: '127.0.0.9' });
      const connecting = client.connect();
      const req = await waitForRequest(m.portal, tokens.bob!, from('127.0.0.9'));
      assert.equal(req.protocol, 'imap');
      await decide(m.portal, tokens.bob!, req.id, 'approve');
      await connecting;
      await client.logout();
      const started = Date.now();
      const list = await curlPop3(m.pop3s, 'bob', pw('bob'), { src: '127.0.0.9' });
      assert.equal(list.code, 0, list.stderr);
      assert.ok(Date.now() - started < 8000, 'not held');
      assert.deepEqual(await pending('bob'), []);
      assert.equal(opened(m, 'bob', '127.0.0.9'), 1);
    });

    it('on the STLS port: STLS but no SASL/USER before TLS, credentials refused, injected plaintext discarded', async () => {
      const c = await RawPop3.plain(m.pop3Starttls);
      assert.deepEqual(await c.until(/^\+OK/), ['+OK mailotp ready.']);
      c.write('CAPA\r\n');
      const caps = await c.until(/^\.$/);
      assert.ok(caps.includes('STLS'), caps.join('|'));
      assert.ok(!caps.some((l) => /^(SASL|USER)\b/.test(l)), caps.join('|'));
      c.write(`USER grace\r\nPASS ${pw('grace')}\r\nAUTH PLAIN ${Buffer.from(`\0grace\0${pw('grace')}`).toString('base64')}\r\n`);
      for (let i = 0; i < 3; i++) assert.deepEqual(await c.until(/^-ERR/), ['-ERR Use STLS first.']);
      c.write('STLS\r\nUSER injected\r\n');
      assert.deepEqual(await c.until(/^\+OK/), ['+OK Begin TLS negotiation now.']);
      const s = await c.upgrade();
      s.write(`PASS ${pw('grace')}\r\nCAPA\r\n`);
      assert.deepEqual(await s.until(/^-ERR/), ['-ERR No username given.'], 'the USER sent in clear was not executed');
      const tlsCaps = await s.until(/^\.$/);
      assert.ok(tlsCaps.includes('USER') && tlsCaps.includes('SASL PLAIN LOGIN') && !tlsCaps.includes('STLS'), tlsCaps.join('|'));
      s.destroy();
    });

    it('poplib with stls() logs in after a tap', async () => {
      const run = pyPop3('stls', m.pop3Starttls, 'alice', pw('alice'), '127.0.0.11');
      const req = await waitForRequest(m.portal, tokens.alice!, from('127.0.0.11'));
      await decide(m.portal, tokens.alice!, req.id, 'approve');
      const out = await run;
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.steps.CAPA ?? '', /\bSTLS\b/);
      assert.doesNotMatch(out.steps.CAPA ?? '', /\b(SASL|USER)\b/);
      assert.match(out.steps['CAPA-TLS'] ?? '', /\bSASL\b.*\bUSER\b/);
      assert.equal(out.steps.PASS, '+OK Logged in.');
      assert.equal(out.steps.STAT, `1 ${Buffer.byteLength(MESSAGE)}`);
    });

    it('AUTH PLAIN without and with an initial response (curl), and commands pipelined behind AUTH reach Dovecot', async () => {
      const first = curlPop3(m.pop3s, 'bob', pw('bob'), { src: '127.0.0.12', mech: 'PLAIN' });
      const req = await waitForRequest(m.portal, tokens.bob!, from('127.0.0.12'));
      await decide(m.portal, tokens.bob!, req.id, 'approve');
      const noIr = await first;
      assert.equal(noIr.code, 0, noIr.stderr);
      assert.ok(curlSent(noIr).includes('AUTH PLAIN'), curlSent(noIr).join('|'));

      const ir = await curlPop3(m.pop3s, 'bob', pw('bob'), { src: '127.0.0.12', mech: 'PLAIN', saslIr: true });
      assert.equal(ir.code, 0, ir.stderr);
      assert.ok(curlSent(ir).some((l) => /^AUTH PLAIN [A-Za-z0-9+/=]+$/.test(l)), curlSent(ir).join('|'));

      // grace has no device: the login passes at once and the pipelined STAT and QUIT go to Dovecot.
      const raw = await RawPop3.secure(m.pop3s);
      await raw.until(/^\+OK/);
      raw.write(`AUTH PLAIN ${Buffer.from(`\0grace\0${pw('grace')}`).toString('base64')}\r\nSTAT\r\nQUIT\r\n`);
      assert.deepEqual(await raw.until(/^\+OK Logging out/), ['+OK Logged in.', '+OK 0 0', '+OK Logging out.']);
      raw.destroy();
    });

    it('a held IMAP login and a held POP3 login of the same user and IP share one request: one tap releases both', async () => {
      const imap = imapClient(m.imaps, 'alice', pw('alice'), { localAddress: '127.0.0.13' });
      const imapIn = imap.connect();
      const req = await waitForRequest(m.portal, tokens.alice!, from('127.0.0.13'));
      const pop = pyPop3('ssl', m.pop3s, 'alice', pw('alice'), '127.0.0.13');
      await m.waitForLog((e) => e.event === 'request.joined' && e.user === 'alice' && e.protocol === 'pop3');
      assert.equal((await pending('alice')).length, 1);
      await decide(m.portal, tokens.alice!, req.id, 'approve');
      await imapIn;
      const out = await pop;
      assert.equal(out.steps.PASS, '+OK Logged in.', out.stdout + out.stderr);
      await imap.logout();
      assert.equal(opened(m, 'alice', '127.0.0.13'), 1);
    });
  });

  describe('hold timeout', { concurrency: 1 }, () => {
    it('times out with -ERR [SYS/TEMP]; a late tap opens the window and the retry gets in at once', async () => {
      const run = pyPop3('ssl', short.pop3s, 'alice', pw('alice'), '127.0.0.8');
      const req = await waitForRequest(short.portal, shortToken);
      const out = await run;
      assert.equal(out.steps.ERROR, TEMP, out.stdout + out.stderr);
      assert.deepEqual(await decide(short.portal, shortToken, req.id, 'approve'), { status: 200, json: { status: 'approved' } });
      const again = await pyPop3('ssl', short.pop3s, 'alice', pw('alice'), '127.0.0.8');
      assert.equal(again.steps.PASS, '+OK Logged in.', again.stdout + again.stderr);
      // In by the window the late tap opened, not by a new request (a held login would end in [SYS/TEMP]).
      // The client can see Dovecot's +OK before mailotp's log line is written: wait for the line.
      const isApproval = (e: { event?: unknown; user?: unknown; clientIp?: unknown }) => e.event === 'login.approved' && e.user === 'alice' && e.clientIp === '127.0.0.8';
      await short.waitForLog(isApproval);
      const approved = short.events().filter(isApproval);
      assert.deepEqual(approved.map((e) => e.reason), ['approval']);
      assert.equal(opened(short, 'alice', '127.0.0.8'), 1);
    });
  });
});
