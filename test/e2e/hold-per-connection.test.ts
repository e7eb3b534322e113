import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { decide, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { bindDevice, RawPop3 } from './pop3-kit.js';

/** One user per protocol: approvals and requests are per user and client address (all 127.0.0.1 here). */
const USERS = [
  { user: 'ivy', password: 'ivy-pass-1' },
  { user: 'pia', password: 'pia-pass-2' },
  { user: 'sue', password: 'sue-pass-3' },
];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;
const plain = (u: string) => Buffer.from(`\0${u}\0${pw(u)}`).toString('base64');
const HOLD_MS = 4000;

/**
 * NeoMutt (IMAP), Thunderbird (POP3) and smtplib retry another mechanism on the same connection right
 * after a refusal. Once a hold has timed out there, the retry is answered at once (after the password
 * check), not held again: approved meanwhile → in, denied → refused, else the same temporary refusal.
 */
describe('one full hold per connection (IMAP, POP3, SMTP)', { concurrency: 3 }, () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  const tokens: Record<string, string> = {};
  const opened = (user: string) => m.events().filter((e) => e.event === 'request.opened' && e.user === user).length;
  const notHeldAgain = (user: string) => m.events().filter((e) => e.msg === 'hold already timed out on this connection; not holding again' && e.user === user).length;
  /** The reply to a retry on the connection, and how long it took. */
  const timed = async (c: RawPop3, line: string, last: RegExp) => {
    const t0 = Date.now();
    c.write(line);
    const lines = await c.until(last);
    return { lines, ms: Date.now() - t0 };
  };

  before(async () => {
    dovecot = await startDovecot({ users: USERS });
    m = await startMailotp({ dovecot, daemonOtp: { enforce: 'bound', holdTime: `${HOLD_MS}ms` } });
    for (const u of USERS) tokens[u.user] = await bindDevice(m, u.user);
  });
  after(async () => {
    await m?.stop();
    await dovecot?.stop();
  });

  it('IMAP: AUTHENTICATE PLAIN is held and times out; LOGIN next is answered at once; after a tap, LOGIN is in', async () => {
    const c = await RawPop3.secure(m.imaps);
    await c.until(/^\* OK/);
    c.write(`a1 AUTHENTICATE PLAIN ${plain('ivy')}\r\n`);
    const first = await c.until(/^a1 /);
    assert.ok(first.includes('* OK Waiting for approval on your phone'), 'the first login was held');
    assert.equal(first.at(-1), 'a1 NO [UNAVAILABLE] Approve this connection on your phone, then retry.');
    const again = await timed(c, `a2 LOGIN ivy ${pw('ivy')}\r\n`, /^a2 /);
    assert.deepEqual(again.lines, ['a2 NO [UNAVAILABLE] Approve this connection on your phone, then retry.'], 'no progress line: not held');
    assert.ok(again.ms < HOLD_MS, `${again.ms} ms`);
    c.write(`a3 LOGIN ivy wrong-password\r\n`);
    assert.match((await c.until(/^a3 /)).at(-1)!, /^a3 NO \[AUTHENTICATIONFAILED\]/, 'the password is still checked');
    const req = await waitForRequest(m.portal, tokens.ivy!);
    await decide(m.portal, tokens.ivy!, req.id, 'approve');
    c.write(`a4 LOGIN ivy ${pw('ivy')}\r\n`);
    assert.match((await c.until(/^a4 /)).at(-1)!, /^a4 OK /);
    c.destroy();
    assert.equal(opened('ivy'), 1);
    assert.equal(notHeldAgain('ivy'), 1);
  });

  it('POP3: USER/PASS is held and times out; AUTH PLAIN next is answered at once; after a deny, refused at once', async () => {
    const c = await RawPop3.secure(m.pop3s);
    await c.until(/^\+OK/);
    c.write(`USER pia\r\nPASS ${pw('pia')}\r\n`);
    const TEMP = '-ERR [SYS/TEMP] Still waiting for approval: approve this connection on your phone, then retry.';
    assert.equal((await c.until(/^-ERR/)).at(-1), TEMP);
    const again = await timed(c, `AUTH PLAIN ${plain('pia')}\r\n`, /^[-+]/);
    assert.deepEqual(again.lines, [TEMP]);
    assert.ok(again.ms < HOLD_MS, `${again.ms} ms`);
    const req = await waitForRequest(m.portal, tokens.pia!);
    await decide(m.portal, tokens.pia!, req.id, 'deny');
    const denied = await timed(c, `AUTH PLAIN ${plain('pia')}\r\n`, /^[-+]/);
    assert.deepEqual(denied.lines, ['-ERR [AUTH] Authentication failed.']);
    assert.ok(denied.ms < HOLD_MS, `${denied.ms} ms`);
    c.destroy();
    assert.equal(opened('pia'), 1, 'no new push after the deny');
  });

  it('SMTP: AUTH PLAIN is held and times out; the retry is answered at once; after a tap, 235', async () => {
    const c = await RawPop3.secure(m.smtps);
    await c.until(/^220 /);
    c.write('EHLO client.example\r\n');
    await c.until(/^250 /);
    c.write(`AUTH PLAIN ${plain('sue')}\r\n`);
    const TEMP = '454 4.7.0 Approve this connection on your phone, then retry.';
    assert.equal((await c.until(/^\d{3} /)).at(-1), TEMP);
    const again = await timed(c, `AUTH PLAIN ${plain('sue')}\r\n`, /^\d{3} /);
    assert.deepEqual(again.lines, [TEMP]);
    assert.ok(again.ms < HOLD_MS, `${again.ms} ms`);
    const req = await waitForRequest(m.portal, tokens.sue!);
    await decide(m.portal, tokens.sue!, req.id, 'approve');
    c.write(`AUTH PLAIN ${plain('sue')}\r\n`);
    assert.equal((await c.until(/^\d{3} /)).at(-1), '235 2.7.0 Authentication successful');
    c.destroy();
    assert.equal(opened('sue'), 1);
    assert.equal(notHeldAgain('sue'), 1);
  });
});
