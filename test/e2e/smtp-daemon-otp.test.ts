import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { decide, deviceApi, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { b64, mailer, pySmtp, RawSmtp, swaks } from './smtp-kit.js';

const USERS = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob-pass-2' },
  { user: 'frank', password: 'frank-pass-6' },
];
/** Each enrolment is two CLI runs of over a second each: two users carry every scenario. */
const ENROLLED = ['alice', 'bob'];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;

describe('SMTP submission behind daemon OTP (real Dovecot, real binary, clients we did not write)', () => {
  let dovecot: DovecotHandle;
  let sink: SmtpSink;
  let m: MailotpProcess;
  const tokens: Record<string, string> = {};

  before(async () => {
    sink = await startSmtpSink();
    dovecot = await startDovecot({ users: USERS, relayPort: sink.port });
    m = await startMailotp({ dovecot });
    const enrolled = await Promise.all(ENROLLED.map((u) => enrol(m, u)));
    ENROLLED.forEach((u, i) => (tokens[u] = enrolled[i]!));
  });
  after(async () => {
    await m?.stop();
    await dovecot?.stop();
    await sink?.stop();
  });

  /** The messages that arrive in the sink from now on. */
  const arrivals = () => {
    const from = sink.messages.length;
    return async (n: number) => (await sink.waitFor(from + n, 25_000)).slice(from);
  };

  it('holds AUTH until the phone approves, then relays through the upstream; the window lets the client straight back in', async () => {
    const next = arrivals();
    const t = mailer(m.smtps, true, 'alice', pw('alice'), '127.0.1.2');
    const sending = t.sendMail({ from: 'alice@example.com', to: 'x@example.org', subject: 'first', text: 'hello' });
    const req = await waitForRequest(m.portal, tokens.alice!);
    assert.deepEqual([req.type, req.user, req.protocol, req.clientIp, req.clientName], ['connection', 'alice', 'smtp', '127.0.1.2', 'nodemailer.example']);
    assert.deepEqual(await decide(m.portal, tokens.alice!, req.id, 'approve'), { status: 200, json: { status: 'approved' } });
    const info = await sending;
    assert.match(info.response, /^250 /);
    const [msg] = await next(1);
    assert.equal(msg?.mailFrom, 'alice@example.com');
    // XCLIENT end to end: the upstream saw the client's address and EHLO name, not mailotp's.
    assert.match(msg!.raw.toString(), /^Received: from nodemailer\.example \(\[127\.0\.1\.2\]\)/);
    t.close();

    const again = mailer(m.smtpStarttls, false, 'alice', pw('alice'), '127.0.1.2');
    const t0 = Date.now();
    await again.sendMail({ from: 'alice@example.com', to: 'y@example.org', subject: 'second', text: 'again' });
    assert.ok(Date.now() - t0 < 5000);
    again.close();
    assert.deepEqual((await deviceApi(m.portal, tokens.alice!, 'GET', '/api/v1/device/requests')).json, { requests: [] });
  });

  it("Python's smtplib: a denied request is 535 5.7.8, and its fallback to AUTH LOGIN pushes nothing new", async () => {
    const run = pySmtp({ mode: 'starttls', port: m.smtpStarttls, src: '127.0.1.3', user: 'bob', password: pw('bob') });
    const req = await waitForRequest(m.portal, tokens.bob!);
    assert.equal(req.clientIp, '127.0.1.3');
    await decide(m.portal, tokens.bob!, req.id, 'deny');
    const { steps, result } = await run;
    assert.deepEqual(steps.at(-1), { step: 'error', code: 535, text: '5.7.8 Authentication credentials invalid' }, result.stderr);
    assert.equal(m.events().filter((e) => e.event === 'request.opened' && e.user === 'bob').length, 1);
  });

  it('a wrong password is 535 at once and opens no request', async () => {
    const t0 = Date.now();
    const r = await swaks(m.smtps, true, ['--auth', 'LOGIN', '--auth-user', 'alice', '--auth-password', 'not-it', '--local-interface', '127.0.1.8', '--quit-after', 'AUTH']);
    assert.match(r.stdout, /<~\* 535 5\.7\.8 /, r.stdout);
    assert.ok(Date.now() - t0 < 3000);
    assert.deepEqual((await deviceApi(m.portal, tokens.alice!, 'GET', '/api/v1/device/requests')).json, { requests: [] });
    assert.equal(m.events().filter((e) => e.event === 'request.opened' && e.user === 'alice').length, 1, 'only the first test opened one');
  });

  it('on the STARTTLS port AUTH is neither offered nor accepted before TLS; MAIL before AUTH is 530', async () => {
    const c = await RawSmtp.connect(m.smtpStarttls, false);
    const ehlo = await c.cmd('EHLO raw.example');
    assert.match(ehlo, /^250[ -]STARTTLS\r$/m);
    assert.doesNotMatch(ehlo, /AUTH|XCLIENT/);
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0frank\0frank-pass-6')}`), '530 5.7.0 Must issue a STARTTLS command first\r\n');
    assert.equal(await c.cmd('STARTTLS'), '220 2.0.0 Ready to start TLS\r\n');
    await c.upgrade();
    const after = await c.cmd('EHLO raw.example');
    // Dovecot 2.3 offers no SMTPUTF8 or DSN, and BURL/XCLIENT are dropped: the list mirrors it.
    assert.deepEqual(after.trim().split('\r\n').slice(1), ['250-8BITMIME', '250-CHUNKING', '250-ENHANCEDSTATUSCODES', '250-SIZE', '250-PIPELINING', '250 AUTH PLAIN LOGIN']);
    assert.equal(await c.cmd('MAIL FROM:<frank@example.com>'), '530 5.7.0 Authentication required\r\n');
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0frank\0frank-pass-6')}`), '235 2.7.0 Authentication successful\r\n');
    // Spliced: this is Dovecot answering now.
    assert.match(await c.cmd('MAIL FROM:<frank@example.com> SMTPUTF8'), /^555 5\.5\.4 /);
    c.close();
  });

  it("one tap releases a client's held IMAP and SMTP logins together", async () => {
    const opened = () => m.events().filter((e) => e.event === 'request.opened' && e.user === 'bob').length;
    const before = opened();
    const imap = imapClient(m.imaps, 'bob', pw('bob'), { localAddress: '127.0.1.9' });
    const imapIn = imap.connect();
    const req = await waitForRequest(m.portal, tokens.bob!, (r) => r.clientIp === '127.0.1.9');
    const smtp = mailer(m.smtps, true, 'bob', pw('bob'), '127.0.1.9');
    const sent = smtp.sendMail({ from: 'bob@example.com', to: 'z@example.org', subject: 'both', text: 'one tap' });
    await m.waitForLog((e) => e.event === 'request.joined' && e.user === 'bob' && e.protocol === 'smtp');
    await decide(m.portal, tokens.bob!, req.id, 'approve');
    await Promise.all([imapIn, sent]);
    await imap.logout();
    smtp.close();
    assert.equal(opened(), before + 1);
  });
});
