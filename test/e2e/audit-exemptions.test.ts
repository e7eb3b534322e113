import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { proxyV1, startProxyForwarder, type ProxyForwarder } from '../helpers/proxy-forwarder.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { decide, deviceApi, enrol, imapClient, python, PY_IMAP_LOGIN, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { testCerts } from '../helpers/certs.js';

const PASS = 'alice-pass-1';
/** Loopback aliases stand for client machines: .2 is on the trusted network, the others are not. */
const TRUSTED = '127.0.0.2';
const TAPPED = '127.0.0.3';
const SCANNER = '127.0.0.4';
const DENIED = '127.0.0.5';
/** What the load balancer says the client is (RFC 5737); the TCP peer is 127.0.0.1, not trusted. */
const PROXIED_TRUSTED = '192.0.2.77';

type AuditRow = { at: string; event: string; user: string | null; clientIp?: string; reason?: string; via?: string; [k: string]: unknown };

/** Logs in with imapflow from `from`; resolves with 'OK' or the server's response code. */
async function login(port: number, from: string, pass = PASS): Promise<string> {
  const c = imapClient(port, 'alice', pass, { localAddress: from });
  try {
    await c.connect();
    await c.logout();
    return 'OK';
  } catch (e) {
    return (e as { serverResponseCode?: string }).serverResponseCode ?? String(e);
  }
}

async function pendingCount(m: MailotpProcess, token: string): Promise<number> {
  const r = await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests');
  return (r.json as { requests: unknown[] }).requests.length;
}

/** `mailotp audit` as an admin runs it, until `want` holds (the server writes the trail just after deciding). */
async function audit(m: MailotpProcess, args: string[], want: (rows: AuditRow[]) => boolean): Promise<AuditRow[]> {
  let rows: AuditRow[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await m.cli(['audit', ...args, '--json']);
    assert.equal(r.code, 0, r.stderr);
    rows = (JSON.parse(r.stdout) as { events: AuditRow[] }).events;
    if (want(rows)) return rows;
    await new Promise((res) => setTimeout(res, 300));
  }
  return rows;
}

function scenario(name: string, store: () => Record<string, unknown>): void {
  describe(`trusted networks, standing approvals and the audit trail (${name}, real Dovecot, real binary)`, () => {
    let dovecot: DovecotHandle;
    let m: MailotpProcess;
    let token: string;
    let lb: ProxyForwarder;

    before(async () => {
      dovecot = await startDovecot();
      m = await startMailotp({
        dovecot,
        store: store(),
        proxyProtocol: true,
        daemonOtp: { holdTime: '20s', trustedNetworks: [`${TRUSTED}/32`, '192.0.2.0/24', '2001:db8::/32'] },
      });
      token = await enrol(m, 'alice');
      lb = await startProxyForwarder({ target: { host: '127.0.0.1', port: m.imapsProxied }, header: (c) => proxyV1(PROXIED_TRUSTED, '198.51.100.1', c.remotePort ?? 1, 993) });
    });
    after(async () => {
      await lb?.stop();
      await m?.stop();
      await dovecot?.stop();
    });

    it('lets a trusted network in without a push, directly and behind a PROXY-protocol balancer', async () => {
      assert.equal(await login(m.imaps, TRUSTED), 'OK');
      assert.equal(await login(lb.port, '127.0.0.1'), 'OK');
      assert.equal(await pendingCount(m, token), 0);
      // The plain listener from 127.0.0.1 itself is no trusted network: the PROXY header made the difference.
    });

    it('refuses a wrong password from a trusted network, with no push', async () => {
      assert.equal(await login(m.imaps, TRUSTED, 'wrong-pass'), 'AUTHENTICATIONFAILED');
      assert.equal(await pendingCount(m, token), 0);
    });

    it('holds a login from elsewhere until the tap, and refuses a denied one (python imaplib)', async () => {
      const held = login(m.imaps, TAPPED);
      const req = await waitForRequest(m.portal, token, (r) => r.clientIp === TAPPED);
      assert.equal((await decide(m.portal, token, req.id, 'approve')).status, 200);
      assert.equal(await held, 'OK');

      const py = python(PY_IMAP_LOGIN, ['127.0.0.1', String(m.imaps), testCerts().caFile, 'alice', PASS, DENIED]);
      const req2 = await waitForRequest(m.portal, token, (r) => r.clientIp === DENIED);
      assert.equal((await decide(m.portal, token, req2.id, 'deny')).status, 200);
      assert.match((await py).stdout, /ERROR .*AUTHENTICATIONFAILED/);
    });

    it('lets a scanner with a standing approval in for its address only; list marks it', async () => {
      const bad = await m.cli(['approvals', 'grant', 'ALICE', '--ip', '127.0.0.0/8', '--ttl', '365d']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--ip: expected one IPv4 or IPv6 address/);
      assert.equal((await m.cli(['approvals', 'grant', 'alice', '--ip', SCANNER, '--ttl', 'forever'])).code, 1);
      const granted = await m.cli(['approvals', 'grant', 'ALICE', '--ip', `::ffff:${SCANNER}`, '--ttl', '365d', '--json']);
      assert.equal(granted.code, 0, granted.stderr);
      assert.equal((JSON.parse(granted.stdout) as { clientIp: string }).clientIp, SCANNER);
      assert.equal(await login(m.imaps, SCANNER), 'OK');
      assert.equal(await pendingCount(m, token), 0);

      const list = await m.cli(['approvals', 'list', '--user', 'alice', '--json']);
      const doc = JSON.parse(list.stdout) as { approvals: { clientIp: string; standing: boolean }[]; trustedNetworks: string[] };
      assert.deepEqual(doc.trustedNetworks, [`${TRUSTED}/32`, '192.0.2.0/24', '2001:db8::/32']);
      assert.deepEqual(doc.approvals.map((a) => [a.clientIp, a.standing]).sort(), [[TAPPED, false], [SCANNER, true]]);
      const text = await m.cli(['approvals', 'list']);
      assert.match(text.stdout, new RegExp(`alice  ${SCANNER.replace(/\./g, '\\.')}  standing`));
      assert.match(text.stdout, /trusted networks \(every user, no tap\): 127\.0\.0\.2\/32, 192\.0\.2\.0\/24/);

      // Revoked with the existing command: the scanner is asked to tap like anyone else.
      assert.equal((await m.cli(['approvals', 'revoke', 'alice', '--ip', SCANNER])).code, 0);
      const again = login(m.imaps, SCANNER);
      const req = await waitForRequest(m.portal, token, (r) => r.clientIp === SCANNER);
      assert.equal((await decide(m.portal, token, req.id, 'deny')).status, 200);
      assert.equal(await again, 'AUTHENTICATIONFAILED');
    });

    it('`mailotp audit --user alice --since 1h --json` lists those decisions with their reasons, and the log has them too', async () => {
      const has = (rows: AuditRow[], event: string, ip: string | null, reason?: string) =>
        rows.some((r) => r.event === event && (ip === null || r.clientIp === ip) && (reason === undefined || r.reason === reason));
      const complete = (rows: AuditRow[]) => has(rows, 'login.denied', SCANNER);
      const rows = await audit(m, ['--user', 'ALICE', '--since', '1h'], complete);
      const expected: [string, string | null, string?][] = [
        ['user.daemon-otp', null],
        ['device.bound', null],
        ['login.approved', TRUSTED, 'trusted-network'],
        ['login.approved', PROXIED_TRUSTED, 'trusted-network'],
        ['login.bad-password', TRUSTED],
        ['login.held', TAPPED],
        ['request.approved', null],
        ['login.approved', TAPPED, 'tap'],
        ['login.held', DENIED],
        ['login.denied', DENIED],
        ['approval.granted', SCANNER],
        ['login.approved', SCANNER, 'standing-approval'],
        ['approval.revoked', SCANNER],
        ['login.denied', SCANNER],
      ];
      for (const [event, ip, reason] of expected) assert.ok(has(rows, event, ip, reason), `${event} ${ip ?? ''} ${reason ?? ''} missing from ${JSON.stringify(rows.map((r) => [r.event, r.clientIp, r.reason]))}`);
      assert.ok(rows.every((r) => r.user === 'alice'));
      assert.equal(rows.find((r) => r.event === 'approval.granted')?.via, 'cli');
      // Oldest first, and never a password or token.
      assert.deepEqual([...rows].sort((a, b) => a.at.localeCompare(b.at)).map((r) => r.at), rows.map((r) => r.at));
      const raw = JSON.stringify(rows);
      assert.ok(!raw.includes(PASS) && !raw.includes('wrong-pass') && !raw.includes(token));

      // The same decisions on the log.
      assert.ok(m.events().some((e) => e.event === 'login.approved' && e.reason === 'standing-approval' && e.clientIp === SCANNER));
      // The human table.
      const table = await m.cli(['audit', '--user', 'alice', '--since', '1h']);
      assert.match(table.stdout, /^TIME +EVENT +USER +CLIENT IP +REASON +DETAIL/);
      assert.match(table.stdout, /login\.approved +alice +127\.0\.0\.2 +trusted-network/);
      // --user with no events, and a nonsense --since.
      assert.deepEqual(await audit(m, ['--user', 'nobody', '--since', '1h'], () => true), []);
      const bad = await m.cli(['audit', '--since', 'yesterday']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--since: expected a duration/);
    });
  });
}

scenario('SQLite', () => ({ driver: 'sqlite', path: 'data/mailotp.db' }));

let redis: RedisServerHandle | null = null;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis?.stop();
});
scenario('Redis', () => ({ driver: 'redis', url: redis!.url, keyPrefix: `e2e-audit-${process.pid}:` }));
