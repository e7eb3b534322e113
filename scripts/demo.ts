/**
 * npm run demo: the whole flow on one machine. Starts the private Dovecot the tests use, mailotp
 * (embedded SQLite store) in front of it with the portal and the web authenticator app, and prints
 * the link to open: sign in, bind the browser as the phone, approve a mail login there. Ctrl-C stops
 * everything.
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
  // Mail logins of the demo user wait for the phone; the phone is bound by the user, in the browser.
  await running.core.store.setDaemonOtp('demo', true, Date.now());
  const portal = 'https://localhost:18443';
  process.stdout.write(`
mailotp demo is running.
  IMAP (implicit TLS):  127.0.0.1:10993     IMAP (STARTTLS): 127.0.0.1:10143
  portal and app:       ${portal}/   (the web authenticator app is ${portal}/app/)
  user / password:      demo / demo-password   (two-factor on for mail apps, no phone bound yet)
  CA certificate:       ${certs.caFile}
  config written to:    ${configFile}

1. Open ${portal}/ in a browser (it warns about the demo's own certificate: accept it, or
   import the CA certificate above) and sign in as demo / demo-password.
2. Bind this browser as the phone: on the settings page press "Bind a phone" and open the pairing
   link it shows in a new tab (on a real phone: scan the QR code). Tap the number the settings page
   shows. The tab is now the authenticator app, and the settings page shows the bound phone.
3. Start a mail login (it waits for your approval, up to 60 s):
     python3 -c "import imaplib,ssl; c=imaplib.IMAP4_SSL('localhost',10993,ssl_context=ssl.create_default_context(cafile='${certs.caFile}')); print(c.login('demo','demo-password')); print(c.select('INBOX'))"
4. The request appears in the app tab ("A mail client on IMAP from 127.0.0.1"): tap Approve and
   the login goes through. Log in again from the same address: no wait for 24 hours
   (the app lists the approved connection, with Revoke).
   Sign out of the portal and sign in again: now the app asks for the number the page shows.

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
