import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certWithDates, serviceAccountKeyPem, testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { runBin, startMailotp, type MailotpProcess } from './harness.js';

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  hint?: string;
}

const DAY = 86_400_000;
const PASSWORD = 'alice-pass-1';

describe('mailotp doctor against a running set-up (real binary, Dovecot, Redis)', () => {
  let dovecot: DovecotHandle;
  let redis: RedisServerHandle;
  let webhook: http.Server;
  let m: MailotpProcess;
  let tlsDir: string;
  let doctorConfig: string;
  let passwordFile: string;

  /** The config mailotp runs with, with the ports it actually bound (it was started on port 0). */
  const writeDoctorConfig = (change: (c: Record<string, unknown>) => void = () => undefined): string => {
    const c = JSON.parse(readFileSync(m.configFile, 'utf8')) as Record<string, unknown> & { listeners: { protocol: string; tls: string; port: number }[]; portal: { port: number } };
    const bound: Record<string, number> = {
      'imap implicit': m.imaps, 'imap starttls': m.imapStarttls, 'pop3 implicit': m.pop3s,
      'pop3 starttls': m.pop3Starttls, 'smtp implicit': m.smtps, 'smtp starttls': m.smtpStarttls,
    };
    for (const l of c.listeners) l.port = bound[`${l.protocol} ${l.tls}`] ?? 0;
    c.portal.port = m.portal;
    (c.push as Record<string, unknown>).fcm = { serviceAccountFile: join(m.dir, 'fcm.json') };
    change(c);
    const file = join(m.dir, `doctor-${Math.random().toString(36).slice(2, 8)}.json`);
    writeFileSync(file, JSON.stringify(c));
    return file;
  };

  const doctor = async (args: string[] = [], config = doctorConfig) => {
    const r = await runBin(['doctor', '--config', config, '--user', 'alice', '--password-file', passwordFile, '--timeout', '5s', ...args]);
    assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), 'the password is never printed');
    return r;
  };
  const json = async (args: string[] = [], config = doctorConfig) => {
    const r = await doctor(['--json', ...args], config);
    return { code: r.code, doc: JSON.parse(r.stdout) as { ok: boolean; checks: Check[] } };
  };
  const find = (checks: Check[], prefix: string) => checks.filter((c) => c.name.startsWith(prefix));

  const reload = async (cert: string, key: string) => {
    copyFileSync(cert, join(tlsDir, 'server.crt'));
    copyFileSync(key, join(tlsDir, 'server.key'));
    const before = m.events().filter((e) => e.msg === 'TLS certificate reloaded').length;
    m.child.kill('SIGHUP');
    await m.waitForLog(() => m.events().filter((e) => e.msg === 'TLS certificate reloaded').length > before);
  };

  before(async () => {
    [dovecot, redis] = await Promise.all([startDovecot(), startRedisServer()]);
    webhook = http.createServer((_req, res) => res.writeHead(405).end());
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const certs = testCerts();
    tlsDir = mkdtempSync(join(tmpdir(), 'mailotp-doctor-tls-'));
    copyFileSync(certs.certFile, join(tlsDir, 'server.crt'));
    copyFileSync(certs.keyFile, join(tlsDir, 'server.key'));
    m = await startMailotp({
      dovecot,
      tls: { cert: join(tlsDir, 'server.crt'), key: join(tlsDir, 'server.key') },
      store: { driver: 'redis', url: redis.url, keyPrefix: `doctor${process.pid}:` },
      push: {
        webhook: { url: `http://127.0.0.1:${(webhook.address() as { port: number }).port}/hook`, secret: 'a-webhook-secret-of-some-length' },
        webpush: { subject: 'mailto:admin@example.com', vapidKeyFile: 'data/vapid.json' },
      },
      logLevel: 'info',
    });
    // A service-account key as Firebase hands it out (the doctor only parses it).
    writeFileSync(
      join(m.dir, 'fcm.json'),
      JSON.stringify({ type: 'service_account', project_id: 'doctor-test', client_email: 'mailotp@doctor-test.iam.gserviceaccount.com', private_key: serviceAccountKeyPem() }),
    );
    passwordFile = join(m.dir, 'doctor-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    doctorConfig = writeDoctorConfig();
  });
  after(async () => {
    await m?.stop();
    await new Promise((resolve) => webhook?.close(resolve));
    await Promise.all([redis?.stop(), dovecot?.stop()]);
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  it('all ok: every listener greets over its TLS mode, certificate, upstream logins, store, push, portal; exit 0', async () => {
    // The test certificate lives two days: below the default warning threshold of 14.
    const r = await doctor(['--cert-warn-days', '1']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(r.stdout, new RegExp(`^ok {4}listener imap 127\\.0\\.0\\.1:${m.imaps} \\(implicit\\): \\* OK`, 'm'));
    assert.match(r.stdout, new RegExp(`^ok {4}listener imap 127\\.0\\.0\\.1:${m.imapStarttls} \\(starttls\\): \\* OK`, 'm'));
    assert.match(r.stdout, new RegExp(`^ok {4}listener pop3 127\\.0\\.0\\.1:${m.pop3s} \\(implicit\\): \\+OK`, 'm'));
    assert.match(r.stdout, new RegExp(`^ok {4}listener pop3 127\\.0\\.0\\.1:${m.pop3Starttls} \\(starttls\\): \\+OK`, 'm'));
    assert.match(r.stdout, new RegExp(`^ok {4}listener smtp 127\\.0\\.0\\.1:${m.smtps} \\(implicit\\): 220 `, 'm'));
    assert.match(r.stdout, new RegExp(`^ok {4}listener smtp 127\\.0\\.0\\.1:${m.smtpStarttls} \\(starttls\\): 220 `, 'm'));
    for (const p of ['imap', 'pop3', 'smtp']) assert.match(r.stdout, new RegExp(`^ok {4}upstream ${p} login as alice: the upstream accepted the password`, 'm'));
    assert.match(r.stdout, /^ok {4}certificate .*: valid until .*, 1 day left, matches the key/m);
    assert.match(r.stdout, /^ok {4}store redis redis:\/\/127\.0\.0\.1:\d+: write, read and delete round trip/m);
    assert.match(r.stdout, /^ok {4}push fcm .*: service account of project doctor-test/m);
    assert.match(r.stdout, /^ok {4}push webhook http:\/\/127\.0\.0\.1:\d+: answers \(HEAD: 405\)/m);
    assert.ok(!r.stdout.includes('/hook'), 'the webhook path (often its secret) is not printed');
    assert.match(r.stdout, /^ok {4}push webpush .*: VAPID key pair present/m);
    assert.match(r.stdout, /^ok {4}portal https:\/\/127\.0\.0\.1:\d+: GET \/healthz: 200/m);
    assert.equal(lines.at(-1), '18 ok, 0 warn, 0 FAIL, 0 skipped');

    const { code, doc } = await json(['--cert-warn-days', '1']);
    assert.equal(code, 0);
    assert.equal(doc.ok, true);
    assert.deepEqual([...new Set(doc.checks.map((c) => c.status))], ['ok']);
    // The upstream saw real logins from the doctor (the forwarded client name is mailotp's own).
    await dovecot.waitForLog(/user=<alice>/);
  });

  it('a wrong test password: FAIL on each upstream login, exit 1; no account: the logins are skipped', async () => {
    writeFileSync(passwordFile, 'not-the-password');
    const { code, doc } = await json(['--only', 'login']);
    writeFileSync(passwordFile, PASSWORD);
    assert.equal(code, 1);
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.checks.map((c) => [c.name, c.status]), [
      ['upstream imap login as alice', 'fail'],
      ['upstream pop3 login as alice', 'fail'],
      ['upstream smtp login as alice', 'fail'],
    ]);
    assert.match(doc.checks[0]!.detail, /refused the password/);

    const bare = await runBin(['doctor', '--config', doctorConfig, '--only', 'login']);
    assert.equal(bare.code, 0);
    assert.match(bare.stdout, /^skip {2}upstream login: no test account given/m);
    const noPassword = await runBin(['doctor', '--config', doctorConfig, '--user', 'alice'], { MAILOTP_DOCTOR_PASSWORD: '' });
    assert.equal(noPassword.code, 1);
    assert.match(noPassword.stderr, /--user needs the password in --password-file or MAILOTP_DOCTOR_PASSWORD/);
    const viaEnv = await runBin(['doctor', '--config', doctorConfig, '--user', 'alice', '--only', 'login', '--json'], { MAILOTP_DOCTOR_PASSWORD: PASSWORD });
    assert.equal(viaEnv.code, 0, viaEnv.stdout);
  });

  it('a certificate close to its end: warn with a hint, exit 0; an expired one served after SIGHUP: FAIL, exit 1', async () => {
    const soon = certWithDates('soon', new Date(Date.now() - DAY), new Date(Date.now() + 5 * DAY));
    await reload(soon.certFile, soon.keyFile);
    let r = await doctor(['--only', 'certificate,listeners']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^warn {2}certificate .*: expires in 4 days/m);
    assert.match(r.stdout, /hint: renew it, then reload: systemctl reload mailotp \(SIGHUP\)/);

    const expired = certWithDates('expired', new Date(Date.now() - 60 * DAY), new Date(Date.now() - DAY));
    await reload(expired.certFile, expired.keyFile);
    const { code, doc } = await json(['--only', 'certificate,listeners']);
    assert.equal(code, 1);
    const cert = find(doc.checks, 'certificate')[0]!;
    assert.equal(cert.status, 'fail');
    assert.match(cert.detail, /^expired on /);
    // The listeners serve what the file holds: the reload took.
    assert.deepEqual([...new Set(find(doc.checks, 'listener').map((c) => c.status))], ['ok']);

    // A key that is not the certificate's: FAIL.
    const mismatched = writeDoctorConfig((c) => ((c.tls as { key: string }).key = soon.keyFile));
    const bad = await json(['--only', 'certificate'], mismatched);
    assert.equal(bad.code, 1);
    assert.match(find(bad.doc.checks, 'certificate')[0]!.detail, /does not match the key/);

    // Files renewed but no SIGHUP: the listeners still serve the old certificate, a warning says so.
    copyFileSync(testCerts().certFile, join(tlsDir, 'server.crt'));
    copyFileSync(testCerts().keyFile, join(tlsDir, 'server.key'));
    r = await doctor(['--only', 'certificate,listeners']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^warn {2}listener imap .*serves another certificate than .*server\.crt/m);
    await reload(testCerts().certFile, testCerts().keyFile);
  });

  it('push channels that cannot work: FAIL for an unusable FCM key, a webhook nobody answers, a missing VAPID file', async () => {
    writeFileSync(join(m.dir, 'broken-fcm.json'), '{"type":"service_account"}');
    const broken = writeDoctorConfig((c) => {
      c.push = {
        fcm: { serviceAccountFile: join(m.dir, 'broken-fcm.json') },
        webhook: { url: 'http://127.0.0.1:9/hook', secret: 'a-webhook-secret-of-some-length' },
        webpush: { subject: 'mailto:admin@example.com', vapidKeyFile: 'data/missing-vapid.json' },
      };
    });
    const { code, doc } = await json(['--only', 'push'], broken);
    assert.equal(code, 1);
    assert.deepEqual(doc.checks.map((c) => c.status), ['fail', 'fail', 'fail']);
    assert.match(doc.checks[0]!.detail, /not a service account key \(missing project_id, client_email, private_key\)/);
    assert.match(doc.checks[1]!.detail, /ECONNREFUSED/);
    assert.match(doc.checks[2]!.detail, /does not exist/);
  });

  it('the store unreachable (Redis killed): FAIL on the store and the portal, exit 1', async () => {
    await redis.stop();
    const r = await doctor(['--only', 'store,portal']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^FAIL {2}store redis redis:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED .+\n {6}hint: is Redis running and reachable\? check store\.url/m);
    assert.match(r.stdout, /^FAIL {2}portal https:\/\/127\.0\.0\.1:\d+: GET \/healthz: 503\n {6}hint: the portal cannot reach the store/m);
    assert.match(r.stdout, /0 ok, 0 warn, 2 FAIL, 0 skipped/);
  });

  it('the upstream down (Dovecot stopped): FAIL on each upstream and each login, listeners still ok, exit 1', async () => {
    await dovecot.stop();
    const { code, doc } = await json(['--only', 'listeners,upstream,login']);
    assert.equal(code, 1);
    assert.deepEqual(find(doc.checks, 'upstream').map((c) => c.status), ['fail', 'fail', 'fail', 'fail', 'fail', 'fail']);
    for (const c of find(doc.checks, 'upstream')) assert.match(`${c.detail} ${c.hint ?? ''}`, /ECONNREFUSED|upstream/);
    assert.deepEqual([...new Set(find(doc.checks, 'listener').map((c) => c.status))], ['ok']);
  });
});
