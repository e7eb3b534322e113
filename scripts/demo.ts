/**
 * npm run demo: the whole flow on one machine. Starts the private Dovecot the tests use, mailotp
 * (embedded SQLite store) in front of it, binds a device for a demo user, and prints how to log in
 * and approve. Ctrl-C stops everything.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log/logger.js';
import { startMailotp } from '../src/main.js';
import { testCerts } from '../test/helpers/certs.js';
import { startDovecot } from '../test/helpers/dovecot.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = join(root, '.demo');

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const user = { user: 'demo', password: 'demo-password' };
  const dovecot = await startDovecot({ users: [user] });
  await dovecot.appendMessage('demo', 'From: welcome@example.com\r\nSubject: Welcome to the mailotp demo\r\n\r\nHello!\r\n');
  const certs = testCerts();
  const doc = {
    listeners: [
      { protocol: 'imap', host: '127.0.0.1', port: 10993, tls: 'implicit' },
      { protocol: 'imap', host: '127.0.0.1', port: 10143, tls: 'starttls' },
    ],
    tls: { cert: certs.certFile, key: certs.keyFile },
    upstream: { imap: { host: '127.0.0.1', port: dovecot.ports.imaps, tls: 'implicit', ca: certs.caFile, servername: 'localhost' } },
    store: { driver: 'sqlite', path: join(dir, 'mailotp.db') },
    daemonOtp: { holdTime: '60s' },
    portal: { host: '127.0.0.1', port: 18443, tls: true, publicUrl: 'https://localhost:18443' },
    log: { level: 'info' },
  };
  const configFile = join(dir, 'mailotp.json');
  writeFileSync(configFile, JSON.stringify(doc, null, 2));
  const config = parseConfig(doc, dir);
  const logger = createLogger({ level: 'info' });
  const running = await startMailotp(config, { logger });
  await running.core.store.setDaemonOtp('demo', true, Date.now());
  const bound = await running.core.devices.bind('demo', 'Demo phone', true);
  if (bound.status !== 'bound') throw new Error('could not bind the demo device');
  const token = bound.token;
  const api = 'https://localhost:18443/api/v1/device';
  process.stdout.write(`
mailotp demo is running.
  IMAP (implicit TLS):  127.0.0.1:10993     IMAP (STARTTLS): 127.0.0.1:10143
  device API:           ${api}
  user / password:      demo / demo-password   (two-factor on, one device bound)
  CA certificate:       ${certs.caFile}
  config written to:    ${configFile}

1. Log in (the login waits for your approval, up to 60 s):
     python3 -c "import imaplib,ssl; c=imaplib.IMAP4_SSL('localhost',10993,ssl_context=ssl.create_default_context(cafile='${certs.caFile}')); print(c.login('demo','demo-password')); print(c.select('INBOX'))"

2. In a second terminal, see the request the phone would see, and approve it:
     export TOKEN='${token}'
     curl -s --cacert ${certs.caFile} -H "Authorization: Bearer $TOKEN" ${api}/requests
     curl -s --cacert ${certs.caFile} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
          -d '{"decision":"approve"}' ${api}/requests/REQUEST_ID
   or watch requests arrive live:
     curl -sN --cacert ${certs.caFile} -H "Authorization: Bearer $TOKEN" ${api}/events

3. Log in again from the same address: no wait for 24 hours. Revoke with:
     node bin/mailotp approvals revoke demo --config ${configFile}

Ctrl-C stops the demo.
`);
  const stop = async () => {
    await running.stop(2000);
    await dovecot.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
