import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { decide, deviceApi, enrol, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { swaks } from './smtp-kit.js';

const USERS = [{ user: 'carol', password: 'carol-pass-3' }];
/** The device's pending requests (none expected). */
async function pendingRequests(port: number, token: string): Promise<unknown[]> {
  const r = await deviceApi(port, token, 'GET', '/api/v1/device/requests');
  return (r.json as { requests?: unknown[] } | null)?.requests ?? [];
}
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;

describe('SMTP hold time and late tap (real Dovecot, real binary)', () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  let token: string;

  before(async () => {
    dovecot = await startDovecot({ users: USERS });
    m = await startMailotp({ dovecot, daemonOtp: { holdTime: '2500ms' } });
    token = await enrol(m, 'carol');
  });
  after(async () => {
    await m?.stop();
    await dovecot?.stop();
  });

  it('swaks: no tap within holdTime is 454 4.7.0; a late tap lets the next try in at once', async () => {
    const args = ['--auth', 'PLAIN', '--auth-user', 'carol', '--auth-password', pw('carol'), '--from', 'carol@example.com', '--to', 'z@example.org', '--local-interface', '127.0.1.4', '--quit-after', 'AUTH'];
    const t0 = Date.now();
    const first = await swaks(m.smtps, true, args);
    assert.match(first.stdout, /<~\* 454 4\.7\.0 Approve this connection on your phone, then retry\./, first.stdout + first.stderr);
    assert.ok(Date.now() - t0 >= 2400, `held ${Date.now() - t0} ms`);
    const req = await waitForRequest(m.portal, token);
    assert.deepEqual((await decide(m.portal, token, req.id, 'approve')).json, { status: 'approved' });
    const second = await swaks(m.smtpStarttls, false, args);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /<~ {2}235 2\.7\.0 Authentication successful/);
    // Let in by the approval the late tap opened, not by a second hold and tap.
    await m.waitForLog((e) => e.event === 'login.approved' && e.protocol === 'smtp' && e.reason === 'approval');
    assert.deepEqual(await pendingRequests(m.portal, token), []);
  });
});
