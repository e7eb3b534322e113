import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startMailotp, type MailotpProcess } from './harness.js';
import { b64, mailer, pySmtp, RawSmtp, withoutReceived } from './smtp-kit.js';

/** No device bound: these logins are let in at once, so only the message path is under test. */
const USERS = [
  { user: 'erin', password: 'erin pass "5" \\ é' },
  { user: 'frank', password: 'frank-pass-6' },
];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('SMTP through mailotp: what the upstream relays is what the client sent', () => {
  let dovecot: DovecotHandle;
  let sink: SmtpSink;
  let m: MailotpProcess;

  before(async () => {
    sink = await startSmtpSink();
    dovecot = await startDovecot({ users: USERS, relayPort: sink.port });
    m = await startMailotp({ dovecot, logLevel: 'info' });
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

  it('relays 50 recipients, 8-bit UTF-8 and dot lines byte for byte (nodemailer)', async () => {
    const next = arrivals();
    const to = Array.from({ length: 50 }, (_, i) => `r${i}@example.org`);
    const body = ['Grüße aus Köln — ünïcödé ✓ 日本語', '.', '..', '.leading dot', 'tail . here', '', '.'].join('\r\n');
    const raw = Buffer.from(`From: Érin <erin@example.com>\r\nTo: many@example.org\r\nSubject: Ünïcödé ✓\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}\r\n`);
    const t = mailer(m.smtps, true, 'erin', pw('erin'));
    const info = await t.sendMail({ envelope: { from: 'erin@example.com', to }, raw });
    t.close();
    assert.equal(info.accepted.length, 50);
    const [msg] = await next(1);
    assert.deepEqual([msg!.mailFrom, msg!.rcptTo], ['erin@example.com', to]);
    assert.ok(withoutReceived(msg!.raw).equals(raw), 'the content arrives unchanged');
    const parsed = await simpleParser(msg!.raw);
    assert.equal(parsed.subject, 'Ünïcödé ✓');
    assert.equal(parsed.text, `${body}\n`.replace(/\r\n/g, '\n'));
  });

  it("several messages in one smtplib session with RSET between, 8BITMIME, dot-stuffing by Python's side", async () => {
    const next = arrivals();
    const data = (i: number) => Buffer.from(`Subject: n${i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLine ${i} ünï\r\n.\r\n..${i}\r\n.end\r\n`);
    const messages = [0, 1, 2].map((i) => ({ from: `erin+${i}@example.com`, to: [`a${i}@example.org`, `b${i}@example.org`], data: data(i), mailOptions: ['BODY=8BITMIME'] }));
    const { steps, result } = await pySmtp({ mode: 'ssl', port: m.smtps, src: '127.0.1.5', user: 'frank', password: pw('frank'), messages, rset: true });
    assert.deepEqual(steps.map((s) => s.step), ['ehlo', 'login', 'sent', 'rset', 'sent', 'rset', 'sent'], result.stdout + result.stderr);
    const got = await next(3);
    for (const [i, msg] of got.entries()) {
      assert.deepEqual([msg.mailFrom, msg.rcptTo], [`erin+${i}@example.com`, [`a${i}@example.org`, `b${i}@example.org`]]);
      assert.ok(withoutReceived(msg.raw).equals(data(i)), `message ${i}`);
    }
  });

  it('BDAT chunks pipelined right behind AUTH reach the upstream unchanged', async () => {
    const next = arrivals();
    const c = await RawSmtp.connect(m.smtps, true, '127.0.1.6');
    await c.cmd('EHLO raw.example');
    const part1 = Buffer.from('Subject: chunks\r\n\r\n.\r\nbinary-ish \xff\xfe bytes\r\n', 'latin1');
    const part2 = Buffer.from('.\r\nlast line\r\n');
    c.write(
      Buffer.concat([
        Buffer.from(`AUTH PLAIN ${b64(`\0erin\0${pw('erin')}`)}\r\nMAIL FROM:<erin@example.com>\r\nRCPT TO:<bdat@example.org>\r\nBDAT ${part1.length}\r\n`),
        part1,
        Buffer.from(`BDAT ${part2.length} LAST\r\n`),
        part2,
      ]),
    );
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push((await c.reply()).slice(0, 3));
    assert.deepEqual(replies, ['235', '250', '250', '250', '250']);
    c.close();
    const [msg] = await next(1);
    assert.ok(withoutReceived(msg!.raw).equals(Buffer.concat([part1, part2])));
  });

  it('relays a 25 MB message intact', async () => {
    const next = arrivals();
    const line = `${'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(1)}\r\n`;
    const bodyLines = Math.ceil((25 * 1024 * 1024) / line.length);
    const raw = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.from(line.repeat(bodyLines))]);
    const t = mailer(m.smtpStarttls, false, 'erin', pw('erin'));
    await t.sendMail({ envelope: { from: 'erin@example.com', to: ['big@example.org'] }, raw });
    t.close();
    const [msg] = await next(1);
    assert.equal(sha(withoutReceived(msg!.raw)), sha(raw));
  });
});
