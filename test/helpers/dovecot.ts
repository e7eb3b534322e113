import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { testCerts } from './certs.js';
import { freePorts } from './free-port.js';

export const DOVECOT_BIN = '/usr/sbin/dovecot';
export const DOVEADM_BIN = '/usr/bin/doveadm';
export const DOVECOT_PACKAGES = 'dovecot-imapd dovecot-pop3d dovecot-submissiond';
/** System account that owns the test mailboxes; Dovecot refuses to run mail processes as root. */
export const MAIL_USER = 'mailotp-mail';

export interface DovecotUser {
  user: string;
  password: string;
}

export const DEFAULT_DOVECOT_USERS: readonly DovecotUser[] = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob-pass-2' },
  { user: 'carol', password: 'carol-pass-3' },
  { user: 'dave', password: 'dave-pass-4' },
];

export interface DovecotOptions {
  users?: DovecotUser[];
  /** Where submission relays mail to; an unused port when not given (POP3/SMTP tests bring their own sink). */
  relayPort?: number;
  /**
   * Keep Dovecot's own delay (~0.5 s at auth_failure_delay = 0) before answering a failed login.
   * Off by default so wrong-password tests stay fast.
   */
  failureDelay?: boolean;
  /**
   * Simultaneous IMAP/POP3 sessions to allow (benchmarks with many idle connections). Dovecot's
   * defaults (100 login processes, 10 connections per user and IP) suit the tests.
   */
  maxConnections?: number;
  /**
   * With maxConnections: logged-in sessions one imap/pop3 process serves [1, Dovecot's default].
   * At 10,000 sessions one process per session would cost Dovecot gigabytes; the benchmark of
   * mailotp at scale wants an upstream that is not the limit.
   */
  clientsPerMailProcess?: number;
  /** auth_username_format: how Dovecot folds the typed name into the passdb key [Dovecot's %Lu]. */
  usernameFormat?: string;
}

export interface DovecotHandle {
  host: '127.0.0.1';
  ports: { imap: number; imaps: number; pop3: number; pop3s: number; submission: number };
  relayPort: number;
  users: DovecotUser[];
  caFile: string;
  configFile: string;
  logFile: string;
  mailUser: string;
  stop(): Promise<void>;
  readLog(): string;
  /** The first log line matching pattern, polled for: Dovecot's log process writes asynchronously. */
  waitForLog(pattern: RegExp, ms?: number): Promise<string>;
  appendMessage(user: string, raw: Buffer | string, mailbox?: string): Promise<void>;
}

export function ensureDovecotInstalled(): void {
  const missing = [DOVECOT_BIN, DOVEADM_BIN, '/usr/lib/dovecot/imap-login', '/usr/lib/dovecot/pop3-login', '/usr/lib/dovecot/submission-login'].filter(
    (p) => !existsSync(p),
  );
  if (missing.length > 0) {
    throw new Error(
      `Dovecot is not installed (missing ${missing.join(', ')}). Run scripts/setup-test-env.sh as root, ` +
        `or: apt-get install -y --no-install-recommends ${DOVECOT_PACKAGES}`,
    );
  }
}

function idOf(flag: '-u' | '-g', user = MAIL_USER): number | null {
  try {
    return Number(execFileSync('id', [flag, user], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
  } catch {
    return null;
  }
}

/** Creates the mail owner once; two test files may race here, hence the re-check after a failed useradd. */
function ensureMailUser(): { uid: number; gid: number } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const uid = idOf('-u');
    const gid = idOf('-g');
    if (uid !== null && gid !== null) return { uid, gid };
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', MAIL_USER], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      // Another process holds /etc/passwd's lock or created the user meanwhile.
      execFileSync('sleep', ['0.1']);
    }
  }
  throw new Error(`cannot create the system user ${MAIL_USER} (useradd failed; are we root?)`);
}

function checkUsers(users: DovecotUser[]): void {
  for (const { user, password } of users) {
    // passwd-file is colon-separated and line-based; the mailotp tests never need these characters.
    if (/[:\r\n\0]/.test(user) || /[:\r\n\0]/.test(password) || user === '') {
      throw new Error(`test user ${JSON.stringify(user)}: user and password must not contain ':' CR LF NUL`);
    }
  }
}

function configText(o: {
  dir: string;
  name: string;
  ports: DovecotHandle['ports'];
  relayPort: number;
  uid: number;
  gid: number;
  certFile: string;
  keyFile: string;
  failureDelay: boolean;
  maxConnections?: number;
  clientsPerMailProcess?: number;
  usernameFormat?: string;
}): string {
  const d = o.dir;
  const n = o.maxConnections;
  const perProcess = o.clientsPerMailProcess ?? 1;
  // service_count = 0: a mail process keeps serving new sessions instead of exiting after its
  // first; vsz_limit grows with the sessions one process holds (256M is Dovecot's default).
  const mailService =
    perProcess === 1
      ? `  process_limit = ${(n ?? 0) + 100}`
      : `  client_limit = ${perProcess}
  service_count = 0
  process_limit = ${Math.ceil((n ?? 0) / perProcess) + 20}
  vsz_limit = ${256 + Math.ceil(perProcess / 4)}M`;
  // One login process serving many clients (high-performance mode) instead of one process per
  // connection, which with TLS would also mean one proxy process per session.
  const scale =
    n === undefined
      ? ''
      : `
default_client_limit = ${2 * n + 100}
service imap-login {
  service_count = 0
  client_limit = ${n + 100}
  process_limit = 4
  process_min_avail = 2
}
service pop3-login {
  service_count = 0
  client_limit = ${n + 100}
  process_limit = 4
}
service imap {
${mailService}
}
service pop3 {
${mailService}
}
`;
  // nodelay from a first passdb survives the second passdb's failure (fields are rolled back only
  // to the previous passdb's snapshot), so Dovecot answers a wrong password at once instead of on
  // its 500 ms failure-queue tick.
  const noDelayPassdb = o.failureDelay
    ? ''
    : `passdb {
  driver = static
  args = noauthenticate nodelay=yes
  result_success = continue
}
`;
  return `# Private Dovecot for mailotp tests; nothing here touches /etc/dovecot or the system instance.
instance_name = ${o.name}
base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/dovecot.log
listen = 127.0.0.1
protocols = imap pop3 submission
hostname = localhost
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = ${Math.min(o.uid, 500)}
mail_location = maildir:~/Maildir
mail_max_userip_connections = ${Math.max(200, (n ?? 0) + 100)}

auth_mechanisms = plain login
${o.usernameFormat ? `auth_username_format = ${o.usernameFormat}\n` : ''}auth_verbose = yes
auth_failure_delay = 0
# Every listener is on loopback, so this only lets the "tls: none" upstream tests log in.
disable_plaintext_auth = no
# Lets mailotp's ID x-originating-ip replace rip. Trusted clients also skip the anvil auth
# penalty (login sends no-penalty for them).
login_trusted_networks = 127.0.0.0/8 ::1
imap_id_log = *

ssl = yes
ssl_cert = <${o.certFile}
ssl_key = <${o.keyFile}
ssl_min_protocol = TLSv1.2

submission_relay_host = 127.0.0.1
submission_relay_port = ${o.relayPort}
submission_relay_ssl = no

${noDelayPassdb}passdb {
  driver = passwd-file
  args = ${d}/users
}
userdb {
  driver = static
  args = uid=${o.uid} gid=${o.gid} home=${d}/mail/%u
}

service imap-login {
  inet_listener imap {
    port = ${o.ports.imap}
  }
  inet_listener imaps {
    port = ${o.ports.imaps}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${o.ports.pop3}
  }
  inet_listener pop3s {
    port = ${o.ports.pop3s}
    ssl = yes
  }
}
service submission-login {
  inet_listener submission {
    port = ${o.ports.submission}
  }
}
# Belt and braces next to login_trusted_networks: no listener, no auth penalty at all.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${scale}`;
}

/**
 * Runs `dovecot -F` (the master stays in the foreground) under a shell that stops it with SIGTERM
 * as soon as its stdin reaches EOF: on stop(), and also when the test process dies without
 * running after() hooks (a crash, a SIGKILL from a runner timeout).
 */
const WATCHDOG = `
exec 3<&0 </dev/null
"$0" -F -c "$1" &
pid=$!
echo "$pid"
(while read -r line <&3; do :; done; kill -TERM "$pid" 2>/dev/null) &
watchdog=$!
wait "$pid"
status=$?
kill "$watchdog" 2>/dev/null
exit $status
`;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the first line the server sends, or null when nothing answers. */
function greeting(port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (line: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const eol = data.indexOf('\n');
      if (eol >= 0) done(data.slice(0, eol).trimEnd());
    });
    socket.on('error', () => done(null));
    socket.on('close', () => done(null));
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts a private Dovecot (as root, in the foreground as our child) with its own config, sockets,
 * state, log and mail under a fresh temp dir, listening on free 127.0.0.1 ports.
 */
export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotHandle> {
  ensureDovecotInstalled();
  if (process.getuid?.() !== 0) throw new Error('startDovecot() must run as root (Dovecot drops privileges itself)');
  const users = opts.users ?? DEFAULT_DOVECOT_USERS.map((u) => ({ ...u }));
  checkUsers(users);
  const { uid, gid } = ensureMailUser();
  const certs = testCerts();

  let lastError = '';
  // A port handed out by freePorts() can be taken by a parallel test before Dovecot binds it.
  for (let attempt = 0; attempt < 3; attempt++) {
    const handle = await launch({ opts, users, uid, gid, certs });
    if (typeof handle !== 'string') return handle;
    lastError = handle;
    if (!/in use/i.test(handle)) break;
  }
  throw new Error(`Dovecot did not start: ${lastError}`);
}

async function launch(a: {
  opts: DovecotOptions;
  users: DovecotUser[];
  uid: number;
  gid: number;
  certs: ReturnType<typeof testCerts>;
}): Promise<DovecotHandle | string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-dovecot-'));
  if (/\s/.test(dir)) throw new Error(`temp dir ${dir} contains whitespace, which the Dovecot config cannot take unquoted`);
  // dovenull, dovecot and the mail user all need to traverse into it.
  chmodSync(dir, 0o755);
  for (const sub of ['run', 'state']) mkdirSync(path.join(dir, sub), { mode: 0o755 });
  const mailDir = path.join(dir, 'mail');
  mkdirSync(mailDir, { mode: 0o700 });
  chownSync(mailDir, a.uid, a.gid);
  const usersFile = path.join(dir, 'users');
  writeFileSync(usersFile, a.users.map((u) => `${u.user}:{PLAIN}${u.password}\n`).join(''), { mode: 0o640 });
  // The auth process reads it as default_internal_user, not as root.
  const internalGid = idOf('-g', 'dovecot');
  if (internalGid === null) throw new Error('the dovecot system user is missing; reinstall dovecot-core');
  chownSync(usersFile, 0, internalGid);

  const [imap, imaps, pop3, pop3s, submission, unused] = await freePorts(6);
  if (!imap || !imaps || !pop3 || !pop3s || !submission || !unused) throw new Error('no free ports');
  const ports = { imap, imaps, pop3, pop3s, submission };
  const relayPort = a.opts.relayPort ?? unused;
  const configFile = path.join(dir, 'dovecot.conf');
  const logFile = path.join(dir, 'dovecot.log');
  const name = `mailotp-test-${path.basename(dir).slice(-6)}`;
  writeFileSync(
    configFile,
    configText({ dir, name, ports, relayPort, uid: a.uid, gid: a.gid, certFile: a.certs.certFile, keyFile: a.certs.keyFile, failureDelay: a.opts.failureDelay ?? false, maxConnections: a.opts.maxConnections, clientsPerMailProcess: a.opts.clientsPerMailProcess, usernameFormat: a.opts.usernameFormat }),
  );

  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const waitForLog = async (pattern: RegExp, ms = 3000): Promise<string> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const line = readLog().split('\n').find((l) => pattern.test(l));
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no Dovecot log line matching ${pattern}; log tail:\n${readLog().slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const removeDir = () => rmSync(dir, { recursive: true, force: true });

  const child = spawn('/bin/sh', ['-c', WATCHDOG, DOVECOT_BIN, configFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let dovecotPid: number | undefined;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => (dovecotPid ??= Number.parseInt(s, 10) || undefined));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr += s));
  const onProcessExit = () => {
    // Our end of the watchdog pipe closes with this process, which takes Dovecot down.
    removeDir();
  };
  process.once('exit', onProcessExit);

  let stopping: Promise<void> | undefined;
  /** `started` false: Dovecot never came up, so a port still open belongs to someone else. */
  const teardown = (started: boolean): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', onProcessExit);
      child.stdin.end();
      if (!(await waitExit(child, 5000))) {
        if (dovecotPid !== undefined) process.kill(dovecotPid, 'SIGKILL');
        child.kill('SIGKILL');
        await waitExit(child, 2000);
      }
      // Login processes inherit the listening sockets and leave a moment after the master.
      const deadline = Date.now() + 5000;
      for (const port of started ? Object.values(ports) : []) {
        while ((await portOpen(port)) && Date.now() < deadline) await sleep(50);
      }
      removeDir();
    })();
    return stopping;
  };
  const stop = () => teardown(true);

  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const why = `${stderr.trim()} ${readLog().trim()}`.trim() || `exit ${child.exitCode ?? child.signalCode}`;
      await teardown(false);
      return why;
    }
    const line = await greeting(imap, 1000);
    if (line?.startsWith('* OK')) break;
    if (Date.now() - started > 10_000) {
      const why = `no IMAP greeting on port ${imap} within 10 s; log: ${readLog().trim()} ${stderr.trim()}`;
      await teardown(true);
      return why;
    }
    await sleep(25);
  }

  const appendMessage = (user: string, raw: Buffer | string, mailbox = 'INBOX'): Promise<void> =>
    new Promise((resolve, reject) => {
      const p = spawn(DOVEADM_BIN, ['-c', configFile, 'save', '-u', user, '-m', mailbox], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8');
      p.stderr.on('data', (s: string) => (err += s));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`doveadm save for ${user} failed (${code}): ${err.trim()}`))));
      p.stdin.end(typeof raw === 'string' ? Buffer.from(raw.replace(/\r?\n/g, '\r\n')) : raw);
    });

  return {
    host: '127.0.0.1',
    ports,
    relayPort,
    users: a.users,
    caFile: a.certs.caFile,
    configFile,
    logFile,
    mailUser: MAIL_USER,
    stop,
    readLog,
    waitForLog,
    appendMessage,
  };
}
