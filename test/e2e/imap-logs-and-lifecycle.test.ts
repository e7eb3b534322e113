import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { testCerts } from '../helpers/certs.js';
import { cleanupDir, decide, deviceApi, enrol, imapClient, ROOT, runBin, runProcess, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

const USERS = [
  { user: 'alice', password: 'Secr3t-Alice-Pw!' },
  { user: 'bob', password: 'Bob-Hidden-Pw-42' },
];

function session(port: number): { send(line: string): void; until(re: RegExp): Promise<string>; close(): void } {
  const sock = tls.connect({ port, host: '127.0.0.1', ca: testCerts().ca, servername: 'localhost' });
  let buf = '';
  sock.on('data', (d: Buffer) => (buf += d.toString()));
  return {
    send: (line) => sock.write(`${line}\r\n`),
    until: async (re) => {
      const end = Date.now() + 15_000;
      while (!re.test(buf)) {
        if (Date.now() > end) throw new Error(`timeout waiting for ${re}: ${buf}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return buf;
    },
    close: () => sock.destroy(),
  };
}

describe('logs, upstream transports and process lifecycle', () => {
  let dovecot: DovecotHandle;
  before(async () => {
    dovecot = await startDovecot({ users: USERS });
  });
  after(async () => {
    await dovecot?.stop();
  });

  it('never writes a password, an AUTHENTICATE payload or a device token to the log, even at trace', async () => {
    const m: MailotpProcess = await startMailotp({ dovecot, upstreamTls: 'starttls', logLevel: 'trace' });
    try {
      const token = await enrol(m, 'alice');
      const s = session(m.imaps);
      await s.until(/^\* OK/);
      s.send(`a1 LOGIN alice "${USERS[0]!.password}"`);
      const req = await waitForRequest(m.portal, token);
      await decide(m.portal, token, req.id, 'approve');
      await s.until(/a1 OK/);
      s.send('a2 LOGOUT');
      await s.until(/a2 OK/);
      s.close();

      const plain = Buffer.from(`\0bob\0${USERS[1]!.password}`).toString('base64');
      const s2 = session(m.imaps);
      await s2.until(/^\* OK/);
      s2.send(`b1 AUTHENTICATE PLAIN ${plain}`);
      await s2.until(/b1 OK/);
      s2.close();
      const s3 = session(m.imaps);
      await s3.until(/^\* OK/);
      s3.send('c1 AUTHENTICATE PLAIN');
      await s3.until(/^\+/m);
      s3.send(plain);
      await s3.until(/c1 OK/);
      s3.close();
      await deviceApi(m.portal, token, 'PUT', '/api/v1/device/push-token', { token: 'fcm-registration-SECRET-xyz', platform: 'android' });
      await deviceApi(m.portal, `${token}bad`, 'GET', '/api/v1/device/requests');
      await new Promise((r) => setTimeout(r, 300));
      const log = m.log();
      assert.match(log, /"level":10/, 'trace lines were written');
      assert.match(log, /LOGIN/, 'the raw LOGIN line is logged, masked');
      for (const secret of [USERS[0]!.password, USERS[1]!.password, plain, token, token.split('.')[1]!, 'fcm-registration-SECRET-xyz']) {
        assert.ok(!log.includes(secret), `log leaks ${secret.slice(0, 6)}…`);
      }
    } finally {
      await m.stop();
    }
  });

  it('works with a plain-text upstream (tls: none) and reloads the certificate on SIGHUP; SIGTERM exits 0; warns of a hold a client gives up on', async () => {
    const m = await startMailotp({ dovecot, upstreamTls: 'none', daemonOtp: { holdTimes: { smtp: '30s' } } });
    const warned = m.events().filter((e) => e.level === 40 && e.key === 'daemonOtp.holdTimes.smtp');
    assert.equal(warned.length, 1);
    assert.match(String(warned[0]?.msg), /swaks \(30 s\)/);
    assert.equal(m.events().filter((e) => e.level === 40 && typeof e.key === 'string' && e.key.startsWith('daemonOtp.')).length, 1, 'only that one');
    const client = imapClient(m.imaps, 'bob', USERS[1]!.password);
    await client.connect();
    m.child.kill('SIGHUP');
    await m.waitForLog((e) => e.msg === 'TLS certificate reloaded');
    // The session opened before the reload keeps working, and new ones are accepted.
    await client.mailboxOpen('INBOX');
    const second = imapClient(m.imaps, 'bob', USERS[1]!.password);
    await second.connect();
    await second.logout();
    await client.logout();
    assert.equal(await m.stop('SIGTERM'), 0);
  });

  it('check-config names the key path of each problem and exits 1; a good config exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-cc-'));
    try {
      const good = join(dir, 'good.yaml');
      writeFileSync(good, `listeners:\n  - { protocol: imap, port: 993, tls: implicit }\ntls: { cert: ${testCerts().certFile}, key: ${testCerts().keyFile} }\nupstream:\n  imap: { host: mail.internal, port: 993, tls: implicit }\n`);
      const ok = await runBin(['check-config', '--config', good]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^users: names are case-insensitive .*like Dovecot %Lu\)$/m);
      writeFileSync(join(dir, 'ln.yaml'), `${readFileSync(good, 'utf8')}users: { stripDomain: true }\n`);
      assert.match((await runBin(['check-config', '--config', join(dir, 'ln.yaml')])).stdout, /^users: .*the domain is dropped.*%Ln\)$/m);
      writeFileSync(join(dir, 'both.yaml'), `${readFileSync(good, 'utf8')}users: { stripDomain: true, defaultDomain: example.com }\n`);
      const both = await runBin(['check-config', '--config', join(dir, 'both.yaml')]);
      assert.equal(both.code, 1);
      assert.match(both.stderr, /^users\.defaultDomain: set stripDomain or defaultDomain, not both$/m);
      assert.doesNotMatch(ok.stderr, /warning/, 'the default holds suit every client in the table');
      const viaEnv = await runBin(['check-config'], { MAILOTP_CONFIG: good });
      assert.equal(viaEnv.code, 0, viaEnv.stderr);
      // A hold that reaches a client's timeout is a warning naming the key, not a problem.
      const slow = join(dir, 'slow.yaml');
      writeFileSync(
        slow,
        `listeners:\n  - { protocol: smtp, port: 465, tls: implicit }\ntls: { cert: ${testCerts().certFile}, key: ${testCerts().keyFile} }\n` +
          `upstream:\n  smtp: { host: mail.internal, port: 587, tls: starttls }\ndaemonOtp:\n  holdTimes: { smtp: 30s }\n`,
      );
      const warned = await runBin(['check-config', '--config', slow]);
      assert.equal(warned.code, 0, warned.stderr);
      assert.match(warned.stderr, /^warning: daemonOtp\.holdTimes\.smtp: a held SMTP login stays silent for up to 30 s, .*swaks \(30 s\)/m);
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, `listeners:\n  - { protocol: imap, port: 993, tls: implicit }\ntls: { cert: a.crt, key: a.key }\nupstream:\n  imap: { host: mail.internal, port: 993, tls: implicit }\ndaemonOtp:\n  approvalTtl: one day\n`);
      const r = await runBin(['check-config', '--config', bad]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^daemonOtp\.approvalTtl: expected a duration like "24h"$/m);
      // The shipped example, next to a certificate made by the shipped script, is valid as it stands.
      mkdirSync(join(dir, 'config'));
      copyFileSync(join(ROOT, 'config', 'mailotp.example.yaml'), join(dir, 'config', 'mailotp.example.yaml'));
      const exampleConfig = join(dir, 'config', 'mailotp.example.yaml');
      const before = await runBin(['check-config', '--config', exampleConfig]);
      assert.equal(before.code, 1);
      assert.match(before.stderr, /^tls: cannot read the certificate or key \(ENOENT\)$/m);
      const made = await runProcess('bash', [join(ROOT, 'certs', 'make-dev-cert.sh'), join(dir, 'certs'), 'mail.example.com']);
      assert.equal(made.code, 0, made.stderr);
      const example = await runBin(['check-config', '--config', exampleConfig]);
      assert.equal(example.code, 0, example.stderr);
      assert.doesNotMatch(example.stderr, /warning/);

      // The files a config names are checked too: a key that does not match, a broken FCM key file.
      const certs = testCerts();
      const files = join(dir, 'files.yaml');
      writeFileSync(join(dir, 'sa.json'), '{"project_id": "p", "private_key": "-----BEGIN PRIVATE KEY-----"');
      writeFileSync(
        files,
        `listeners:\n  - { protocol: imap, port: 993, tls: implicit }\ntls: { cert: ${certs.certFile}, key: ${join(dir, 'certs', 'server.key')} }\n` +
          `upstream:\n  imap: { host: mail.internal, port: 993, tls: implicit, ca: missing-ca.pem }\npush:\n  fcm: { serviceAccountFile: sa.json }\n`,
      );
      const badFiles = await runBin(['check-config', '--config', files]);
      assert.equal(badFiles.code, 1);
      assert.match(badFiles.stderr, /^tls: .* are not a matching PEM certificate and key$/m);
      assert.match(badFiles.stderr, /^upstream\.imap\.ca: .*missing-ca\.pem is not a readable PEM CA file \(ENOENT\)$/m);
      assert.match(badFiles.stderr, /^push\.fcm\.serviceAccountFile: .*sa\.json is not valid JSON$/m);
      assert.doesNotMatch(badFiles.stderr, /PRIVATE KEY/, 'never quotes the key file');
    } finally {
      cleanupDir(dir);
    }
  });

  it('start fails with exit 1 and leaves nothing running when a port is taken', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-busy-'));
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const file = join(dir, 'busy.json');
      writeFileSync(
        file,
        JSON.stringify({
          listeners: [{ protocol: 'imap', host: '127.0.0.1', port, tls: 'implicit' }],
          tls: { cert: testCerts().certFile, key: testCerts().keyFile },
          upstream: { imap: { host: '127.0.0.1', port: dovecot.ports.imaps, tls: 'implicit', ca: testCerts().caFile, servername: 'localhost' } },
          store: { path: 'data/m.db' },
          portal: { host: '127.0.0.1', port: 0 },
        }),
      );
      // runBin resolves only once the process has exited: nothing may keep it alive.
      const r = await runBin(['start', '--config', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /EADDRINUSE/);
    } finally {
      busy.close();
      cleanupDir(dir);
    }
  });

  it('device add refuses a second device without --replace', async () => {
    const m = await startMailotp({ dovecot });
    try {
      const first = await m.cli(['device', 'add', 'bob', '--json']);
      assert.equal(first.code, 0, first.stderr);
      const doc = JSON.parse(first.stdout) as { user: string; deviceId: string; token: string };
      assert.deepEqual(Object.keys(doc).sort(), ['deviceId', 'token', 'user']);
      const second = await m.cli(['device', 'add', 'bob']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /already has a bound device/);
      const show = await m.cli(['user', 'show', 'bob', '--json']);
      const shown = JSON.parse(show.stdout) as { device: { deviceId: string } };
      assert.equal(shown.device.deviceId, doc.deviceId);
      assert.ok(!show.stdout.includes(doc.token.split('.')[1]!), 'no secret in user show');
      const removed = await m.cli(['device', 'remove', 'bob']);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal((await deviceApi(m.portal, doc.token, 'GET', '/api/v1/device/requests')).status, 401);
    } finally {
      await m.stop();
    }
  });
});
