import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { decide, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { bindDevice } from './pop3-kit.js';
import { fetchmail, mbsync, msmtp, removeClientDirs, withoutFetchmailReceived, type Account } from './real-clients-kit.js';
import { withoutReceived } from './smtp-kit.js';

/**
 * The mail programs Debian packages, unmodified, through mailotp and the real Dovecot: mbsync (isync),
 * fetchmail, msmtp. Every client connects from 127.0.0.1 (mbsync and fetchmail cannot pick a source
 * address), and approvals are per user and address, so each approved case has its own user. The
 * untapped ones leave their requests pending, and the denied cases join those and deny them.
 */
const names = ['amy', 'fay', 'sam', 'ian', 'tom', 'tim'] as const;
type Name = (typeof names)[number];
const USERS = names.map((user) => ({ user, password: `${user}-pass-8` }));
const acct = (user: Name): Account => ({ user, password: `${user}-pass-8` });

const MESSAGES = [
  'From: a@example.com\r\nTo: amy@example.com\r\nSubject: one\r\n\r\n.a line starting with a dot\r\n..two dots\r\nend\r\n',
  'From: b@example.com\r\nTo: amy@example.com\r\nSubject: =?UTF-8?Q?zw=C3=A9i?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße ✓\r\n' +
    'x'.repeat(900) +
    '\r\n',
];

describe('real mail programs through mailotp: mbsync, fetchmail, msmtp', { concurrency: 1 }, () => {
  let dovecot: DovecotHandle;
  let sink: SmtpSink;
  /** holdTime 10s: taps land mid-hold. */
  let m: MailotpProcess;
  /** holdTime 1.5s: nobody taps. The same store (folder) as m. */
  let short: MailotpProcess;
  const tokens: Partial<Record<Name, string>> = {};
  const imaps = (p: MailotpProcess) => ({ port: p.imaps, caFile: dovecot.caFile });
  const pop3s = (p: MailotpProcess) => ({ port: p.pop3s, caFile: dovecot.caFile });
  const smtps = (p: MailotpProcess) => ({ port: p.smtps, caFile: dovecot.caFile });
  /** Waits for the user's request, then answers it as the phone would. */
  const tap = async (user: Name, decision: 'approve' | 'deny') => {
    const req = await waitForRequest(m.portal, tokens[user]!, (r) => r.user === user);
    assert.equal((await decide(m.portal, tokens[user]!, req.id, decision)).status, 200);
    return req;
  };

  before(async () => {
    sink = await startSmtpSink();
    dovecot = await startDovecot({ users: USERS, relayPort: sink.port });
    for (const user of ['amy', 'fay'] as const) for (const raw of MESSAGES) await dovecot.appendMessage(user, raw);
    const daemonOtp = { enforce: 'bound' };
    m = await startMailotp({ dovecot, daemonOtp, logLevel: 'info' });
    short = await startMailotp({ dovecot, daemonOtp: { ...daemonOtp, holdTime: '1500ms' }, logLevel: 'info', dir: m.dir });
    await Promise.all(names.map(async (u) => (tokens[u] = await bindDevice(m, u))));
  });
  after(async () => {
    await short?.stop();
    await m?.stop();
    await dovecot?.stop();
    await sink?.stop();
    removeClientDirs();
  });

  it('mbsync: held until the tap (the progress lines keep its 2 s Timeout from firing), then the maildir equals a direct sync', async () => {
    const run = mbsync(imaps(m), acct('amy'), { timeoutSeconds: 2 });
    await waitForRequest(m.portal, tokens.amy!, (r) => r.user === 'amy');
    // Past mbsync's own Timeout: only the "* OK Waiting for approval" lines (every 1 s here) keep it.
    await sleep(3500);
    const req = await tap('amy', 'approve');
    assert.equal(req.protocol, 'imap');
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const direct = await mbsync({ port: dovecot.ports.imaps, caFile: dovecot.caFile }, acct('amy'));
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(r.messages.length, MESSAGES.length);
    assert.deepEqual(r.messages, direct.messages);
    // Maildir keeps LF line ends: the content is the appended messages, nothing added or lost.
    assert.deepEqual(r.messages.map((b) => b.toString('utf8')).sort(), MESSAGES.map((s) => s.replace(/\r\n/g, '\n')).sort());
  });

  it('fetchmail: held until the tap, then it delivers exactly what a direct poll delivers', async () => {
    const run = fetchmail(pop3s(m), acct('fay'));
    const req = await tap('fay', 'approve');
    assert.equal(req.protocol, 'pop3');
    const r = await run;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const direct = await fetchmail({ port: dovecot.ports.pop3s, caFile: dovecot.caFile }, acct('fay'));
    assert.equal(direct.code, 0, direct.stdout + direct.stderr);
    assert.equal(r.delivered.length, MESSAGES.length);
    const through = r.delivered.map(withoutFetchmailReceived);
    assert.deepEqual(through, direct.delivered.map(withoutFetchmailReceived));
    // fetchmail hands its MDA LF line ends: the messages as appended, nothing added or lost.
    assert.deepEqual(through.map((b) => b.toString('utf8')).sort(), MESSAGES.map((x) => x.replace(/\r\n/g, '\n')).sort());
  });

  it('msmtp: held until the tap, then Dovecot relays the same bytes as when msmtp sends directly', async () => {
    // With its own Date and Message-ID, msmtp adds nothing, so both paths can be compared byte for byte.
    const raw = Buffer.from(`Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <msmtp-1@example.com>\r\n${MESSAGES[1]!.replace('amy@example.com', 'sam@example.com')}`);
    const next = sink.messages.length;
    const run = msmtp(smtps(m), acct('sam'), 'sam@example.com', ['r1@example.org', 'r2@example.org'], raw);
    const req = await tap('sam', 'approve');
    assert.equal(req.protocol, 'smtp');
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const direct = await msmtp({ port: dovecot.ports.submission, caFile: dovecot.caFile, starttls: true }, acct('sam'), 'sam@example.com', ['r1@example.org', 'r2@example.org'], raw);
    assert.equal(direct.code, 0, direct.stderr);
    const [viaMailotp, viaDirect] = await sink.waitFor(next + 2, 20_000).then((all) => all.slice(next));
    assert.deepEqual([viaMailotp!.mailFrom, viaMailotp!.rcptTo], ['sam@example.com', ['r1@example.org', 'r2@example.org']]);
    assert.deepEqual([viaDirect!.mailFrom, viaDirect!.rcptTo], ['sam@example.com', ['r1@example.org', 'r2@example.org']]);
    assert.equal(withoutReceived(viaMailotp!.raw).toString('latin1'), withoutReceived(viaDirect!.raw).toString('latin1'), 'the same content both ways');
    assert.ok(withoutReceived(viaMailotp!.raw).equals(raw), 'and the message as msmtp read it');
  });

  it('untapped: each program reports a temporary failure, not a wrong password', async () => {
    const [sync, poll, send] = await Promise.all([
      mbsync(imaps(short), acct('ian')),
      fetchmail(pop3s(short), acct('tom')),
      msmtp(smtps(short), acct('tim'), 'tim@example.com', ['r@example.org'], Buffer.from('Subject: t\r\n\r\nx\r\n')),
    ]);
    assert.notEqual(sync.code, 0);
    assert.match(sync.stderr, /NO \[UNAVAILABLE\] Approve this connection on your phone, then retry\./, sync.stderr);
    // fetchmail: "lock busy" (exit 9, PS_LOCKBUSY), our advice shown; never its authentication failure (exit 3).
    const said = poll.stdout + poll.stderr;
    assert.equal(poll.code, 9, said);
    assert.match(said, /\[SYS\/TEMP\] Still waiting for approval: approve this connection on your phone, then retry\./);
    assert.match(said, /lock busy/);
    assert.doesNotMatch(said, /[Aa]uthorization failure|[Aa]uthentication failed|password is invalid/);
    // msmtp reads any answer to AUTH but 235 as "authentication failed" (exit 77, EX_NOPERM), 454 or
    // 535 alike; what tells the user it is temporary is the server message it prints under it.
    assert.equal(send.code, 77, send.stderr);
    assert.match(send.stderr, /server message: 454 4\.7\.0 Approve this connection on your phone, then retry\./);
  });

  it('denied: each program reports the refusal as an authentication failure', async () => {
    // Each login joins the request its untapped attempt left pending (no new push), which is denied.
    const sync = mbsync(imaps(m), acct('ian'));
    await m.waitForLog((e) => e.event === 'request.joined' && e.user === 'ian');
    await tap('ian', 'deny');
    const s = await sync;
    assert.notEqual(s.code, 0);
    assert.match(s.stderr, /NO \[AUTHENTICATIONFAILED\]/, s.stderr);

    const poll = fetchmail(pop3s(m), acct('tom'));
    await m.waitForLog((e) => e.event === 'request.joined' && e.user === 'tom');
    await tap('tom', 'deny');
    const p = await poll;
    assert.equal(p.code, 3, p.stdout + p.stderr);

    const send = msmtp(smtps(m), acct('tim'), 'tim@example.com', ['r@example.org'], Buffer.from('Subject: d\r\n\r\nx\r\n'));
    await m.waitForLog((e) => e.event === 'request.joined' && e.user === 'tim');
    await tap('tim', 'deny');
    const d = await send;
    assert.equal(d.code, 77, d.stderr);
    assert.match(d.stderr, /server message: 535 5\.7\.8 Authentication credentials invalid/);
  });
});
