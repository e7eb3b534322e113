import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startSentinelSet, type SentinelSetHandle } from '../helpers/redis-sentinel.js';
import { decide, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Far above the failover time; only a loaded machine comes near it. */
const LIMIT_MS = 50_000;

/** One imapflow login from `ip`: 'ok' when let in (then logged out), else the server's response code. */
function login(port: number, ip: string): { client: ReturnType<typeof imapClient>; outcome: Promise<string> } {
  const client = imapClient(port, 'alice', 'alice-pass-1', { localAddress: ip });
  const outcome = client.connect().then(
    async () => {
      await client.logout();
      return 'ok';
    },
    (e: { serverResponseCode?: string; message?: string }) => e.serverResponseCode ?? `error: ${e.message ?? ''}`,
  );
  return { client, outcome };
}

describe('IMAP logins through a Redis Sentinel failover (real Dovecot, 1 master, 2 replicas, 3 sentinels)', () => {
  let dovecot: DovecotHandle;
  let set: SentinelSetHandle;
  let a: MailotpProcess;
  let token: string;

  before(async () => {
    [dovecot, set] = await Promise.all([startDovecot(), startSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 5000 })]);
    const store = { driver: 'redis', sentinels: set.sentinels, sentinelName: set.name, keyPrefix: `e2e-sentinel${process.pid}:` };
    // A hold well past the failover time, so the login held when the master dies can still be released.
    a = await startMailotp({ dovecot, store, daemonOtp: { holdTime: '60s' } });
    token = await enrol(a, 'alice');
  });
  after(async () => {
    await a?.stop();
    await Promise.all([set?.stop(), dovecot?.stop()]);
  });

  it('refuses temporarily during the failover, keeps approvals, releases the held login after it, and runs on without a restart', async () => {
    // Approved before the failover: 127.0.0.2 has an approval window.
    const first = login(a.imaps, '127.0.0.2');
    const req1 = await waitForRequest(a.portal, token, (r) => r.clientIp === '127.0.0.2');
    assert.equal((await decide(a.portal, token, req1.id, 'approve')).status, 200);
    assert.equal(await first.outcome, 'ok');

    // Held when the master dies.
    const held = login(a.imaps, '127.0.0.3');
    const heldReq = await waitForRequest(a.portal, token, (r) => r.clientIp === '127.0.0.3');

    const oldPort = await set.killMaster();
    const killedAt = Date.now();

    // The tap on the held login keeps arriving until the store takes it (a phone retries a 503).
    const tapStatuses: number[] = [];
    const tapping = (async () => {
      for (;;) {
        const s = (await decide(a.portal, token, heldReq.id, 'approve')).status;
        tapStatuses.push(s);
        if (s === 200) return Date.now();
        // Bounded, so a tap that can never be taken fails the test with its statuses instead of hanging.
        if (Date.now() - killedAt > LIMIT_MS) return 0;
        await sleep(100);
      }
    })();

    // An address never approved tries at the same time: refused temporarily while the store is away,
    // held (not let in) once it is back.
    const unapprovedRun = (async () => {
      const outcomes: string[] = [];
      for (;;) {
        const attempt = login(a.imaps, '127.0.0.4');
        const req = waitForRequest(a.portal, token, (r) => r.clientIp === '127.0.0.4', 3000).catch(() => null);
        const first = await Promise.race([attempt.outcome, req]);
        if (first !== null && typeof first !== 'string') {
          attempt.client.close();
          outcomes.push('held');
          return outcomes;
        }
        outcomes.push(await attempt.outcome);
        if (Date.now() - killedAt > LIMIT_MS) return outcomes;
        await sleep(100);
      }
    })();

    // The address approved before the kill logs in again and again: refused temporarily until the
    // new master is found, then let in with no tap (the approval survived).
    const approvedOutcomes: string[] = [];
    let firstLoginAfter = 0;
    while (firstLoginAfter === 0) {
      const o = await login(a.imaps, '127.0.0.2').outcome;
      approvedOutcomes.push(o);
      if (o === 'ok') firstLoginAfter = Date.now();
      else await sleep(100);
      if (Date.now() - killedAt > LIMIT_MS) assert.fail(`no login within ${LIMIT_MS} ms of the kill: ${approvedOutcomes.join(', ')}`);
    }
    const unapproved = await unapprovedRun;
    const tappedAt = await tapping;
    assert.ok(tappedAt > 0, `the tap was never taken: ${tapStatuses.join(', ')}`);

    assert.equal(await held.outcome, 'ok', 'the login held across the failover is released by the tap taken on the new master');
    assert.notEqual(await set.masterPort(), oldPort);
    assert.ok(approvedOutcomes.slice(0, -1).every((o) => o === 'UNAVAILABLE'), `refusals are temporary: ${approvedOutcomes.join(', ')}`);
    assert.ok(tapStatuses.slice(0, -1).every((s) => s === 503), `taps during the failover: ${tapStatuses.join(', ')}`);
    assert.deepEqual(unapproved.at(-1), 'held', `an unapproved address: ${unapproved.join(', ')}`);
    assert.ok(unapproved.slice(0, -1).every((o) => o === 'UNAVAILABLE'), `never let in without a tap: ${unapproved.join(', ')}`);
    console.log(
      `# sentinel failover through mailotp (down-after 1000 ms): first login ${firstLoginAfter - killedAt} ms after the master was killed ` +
        `(${approvedOutcomes.length - 1} temporary refusals before it, ${unapproved.length - 1} to an unapproved address); tap taken after ${tappedAt - killedAt} ms (${tapStatuses.length - 1} retries)`,
    );
  });
});
