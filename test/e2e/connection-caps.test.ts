import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { rawConnect, type RawConnection } from './raw-client.js';
import { enrol, imapClient, startMailotp, waitForRequest, decide, type MailotpProcess } from './harness.js';

const IMAP_BUSY = '* BYE [UNAVAILABLE] Too many connections, try again later.';
const POP3_BUSY = '-ERR [SYS/TEMP] Too many connections, please wait and try again later.';
const SMTP_BUSY = /^421 4\.7\.0 \S+ Too many connections, try again later$/;

describe('connection caps and held logins per user (real Dovecot, real binary)', () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  const open: RawConnection[] = [];

  before(async () => {
    dovecot = await startDovecot();
    m = await startMailotp({ dovecot, limits: { maxConnections: 12, maxConnectionsPerIp: 5, maxHeldLoginsPerUser: 2 }, daemonOtp: { holdTime: '20s' } });
  });
  after(async () => {
    for (const c of open) c.socket.destroy();
    await m?.stop();
    await dovecot?.stop();
  });

  /** A connection that was let in: its greeting arrived. */
  async function admitted(port: number, ip: string, greeting = /^(\* OK|\+OK|220 )/): Promise<RawConnection> {
    const c = rawConnect(port, ip);
    open.push(c);
    assert.match(await c.line(), greeting);
    return c;
  }

  /** A connection that was refused: the busy line, then the server closed it. */
  async function refused(port: number, ip: string): Promise<string> {
    const c = rawConnect(port, ip);
    const line = await c.line();
    await c.closed;
    return line;
  }

  /** Waits until mailotp has ended n sessions from ip in all (its place is given back before that line). */
  async function sessionsEnded(ip: string, n: number): Promise<void> {
    const ended = () => m.events().filter((e) => e.msg === 'connection closed' && e.clientIp === ip).length;
    const deadline = Date.now() + 10_000;
    while (ended() < n) {
      if (Date.now() > deadline) throw new Error(`${ended()} of ${n} sessions from ${ip} ended`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const closeAll = async (): Promise<void> => {
    const all = open.splice(0);
    for (const c of all) c.socket.destroy();
    await Promise.all(all.map((c) => c.closed));
  };

  it('past maxConnectionsPerIp: each protocol refuses temporarily and closes; other addresses get in; places come back', async () => {
    const five = [];
    for (let i = 0; i < 5; i++) five.push(await admitted(i % 2 ? m.pop3s : m.imaps, '127.8.0.1'));
    assert.equal(await refused(m.imaps, '127.8.0.1'), IMAP_BUSY);
    assert.equal(await refused(m.pop3s, '127.8.0.1'), POP3_BUSY);
    assert.match(await refused(m.smtps, '127.8.0.1'), SMTP_BUSY);
    await admitted(m.imaps, '127.8.0.2');
    const event = await m.waitForLog((e) => e.event === 'connection.refused' && e.clientIp === '127.8.0.1');
    assert.equal(event.cap, 'maxConnectionsPerIp');

    // Two close: two places come back, and no more.
    for (const c of five.slice(0, 2)) c.socket.destroy();
    await sessionsEnded('127.8.0.1', 2);
    await admitted(m.smtps, '127.8.0.1');
    await admitted(m.imaps, '127.8.0.1');
    assert.equal(await refused(m.imaps, '127.8.0.1'), IMAP_BUSY);
    await closeAll();
  });

  it('past maxConnections: refused whatever the address; after they close, all places are free again', async () => {
    await sessionsEnded('127.8.0.1', 7);
    await sessionsEnded('127.8.0.2', 1);
    for (let round = 0; round < 2; round++) {
      const ips = Array.from({ length: 12 }, (_, i) => `127.9.${round}.${i + 1}`);
      await Promise.all(ips.map((ip) => admitted(m.imaps, ip)));
      assert.equal(await refused(m.imaps, `127.9.${round}.100`), IMAP_BUSY);
      await closeAll();
      for (const ip of ips) await sessionsEnded(ip, 1);
    }
    await m.waitForLog((e) => e.event === 'connection.refused' && e.cap === 'maxConnections');
  });

  it('past maxHeldLoginsPerUser: a further login of that user waiting for a tap is refused and closed', async () => {
    const token = await enrol(m, 'alice');
    const login = async (ip: string): Promise<RawConnection> => {
      const c = await admitted(m.imaps, ip);
      c.socket.write('a LOGIN alice alice-pass-1\r\n');
      return c;
    };
    const held = [await login('127.10.0.1'), await login('127.10.0.2')];
    // The progress line proves each login is held (harness: every second).
    for (const c of held) await c.line((l) => l === '* OK Waiting for approval on your phone');
    const third = await login('127.10.0.3');
    assert.equal(await third.line((l) => l.startsWith('a ')), 'a NO [UNAVAILABLE] Too many attempts, try again later.');
    await third.closed;
    assert.ok(!third.received().includes('Waiting for approval'), 'the refused login was never held');
    await m.waitForLog((e) => e.event === 'login.rate-limited' && e.limit === 'held' && e.clientIp === '127.10.0.3');
    // Another user is not affected.
    const bob = imapClient(m.imaps, 'bob', 'bob-pass-2', { localAddress: '127.10.0.3' });
    await bob.connect();
    await bob.logout();
    for (const ip of ['127.10.0.1', '127.10.0.2']) {
      const r = await waitForRequest(m.portal, token, (x) => x.clientIp === ip);
      assert.equal((await decide(m.portal, token, r.id, 'approve')).status, 200);
    }
    for (const c of held) assert.match(await c.line((l) => l.startsWith('a ')), /^a OK /);
    // Their places are free again: two more can be held.
    const again = [await login('127.10.0.4'), await login('127.10.0.5')];
    for (const c of again) await c.line((l) => l === '* OK Waiting for approval on your phone');
    await closeAll();
  });
});
