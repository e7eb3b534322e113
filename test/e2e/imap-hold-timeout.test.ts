import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { testCerts } from '../helpers/certs.js';
import { decide, deviceApi, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

/** Logs in over a raw TLS socket and returns every line the server sent until the tagged reply. */
async function rawLogin(port: number, user: string, pass: string, localAddress: string): Promise<{ lines: string[]; ms: number }> {
  const sock = tls.connect({ port, host: '127.0.0.1', localAddress, ca: testCerts().ca, servername: 'localhost' } as tls.ConnectionOptions);
  const started = Date.now();
  let buf = '';
  return new Promise((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.startsWith('* OK') && !buf.includes('t1 LOGIN')) {
        if (!sock.writableEnded && !(sock as { sent?: boolean }).sent) {
          (sock as { sent?: boolean }).sent = true;
          sock.write(`t1 LOGIN ${user} ${pass}\r\n`);
        }
      }
      if (/^t1 .*\r\n/m.test(buf)) {
        sock.destroy();
        resolve({ lines: buf.split('\r\n').filter(Boolean), ms: Date.now() - started });
      }
    });
    sock.on('error', reject);
  });
}

describe('IMAP hold time, late tap and approval window', () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  let token: string;

  before(async () => {
    dovecot = await startDovecot();
    m = await startMailotp({ dovecot, daemonOtp: { holdTime: '2500ms', progressInterval: '1s', approvalTtl: '4s' } });
    token = await enrol(m, 'alice');
  });
  after(async () => {
    await m?.stop();
    await dovecot?.stop();
  });

  it('sends progress lines while held, then NO [UNAVAILABLE]; a late tap lets the retry in at once; the window ends', async () => {
    const first = await rawLogin(m.imaps, 'alice', 'alice-pass-1', '127.0.0.2');
    const progress = first.lines.filter((l) => l === '* OK Waiting for approval on your phone');
    assert.ok(progress.length >= 2, `progress lines: ${JSON.stringify(first.lines)}`);
    assert.ok(!first.lines.some((l) => l.includes('[ALERT]')));
    assert.equal(first.lines.at(-1), 't1 NO [UNAVAILABLE] Approve this connection on your phone, then retry.');
    assert.ok(first.ms >= 2400, `held ${first.ms} ms`);

    // The phone answers after the client was told to retry: the request is still open.
    const req = await waitForRequest(m.portal, token);
    assert.deepEqual((await decide(m.portal, token, req.id, 'approve')).json, { status: 'approved' });

    const retry = imapClient(m.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.2' });
    const t0 = Date.now();
    await retry.connect();
    assert.ok(Date.now() - t0 < 2000, 'the retry is not held');
    await retry.logout();

    // approvalTtl is 4 s in this config: after it, the same client is asked again.
    await new Promise((r) => setTimeout(r, 4200));
    const late = imapClient(m.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.2' });
    const outcome = late.connect().then(
      () => 'ok',
      (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
    );
    const second = await waitForRequest(m.portal, token);
    assert.notEqual(second.id, req.id);
    await decide(m.portal, token, second.id, 'deny');
    assert.equal(await outcome, 'AUTHENTICATIONFAILED');
    late.close();
    const list = await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests');
    assert.deepEqual(list.json, { requests: [] });
  });
});
