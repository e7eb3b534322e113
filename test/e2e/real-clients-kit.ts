import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess, type ProcessResult } from './harness.js';

/** Where a client connects: mailotp's listener or the test Dovecot's own port. */
export interface Endpoint {
  port: number;
  caFile: string;
}

export interface Account {
  user: string;
  password: string;
}

/** Runs a program with HOME in its own folder. */
function run(cmd: string, args: string[], home: string, stdin?: Buffer): Promise<ProcessResult> {
  return runProcess(cmd, args, { HOME: home, LC_ALL: 'C' }, stdin);
}

const dirs: string[] = [];

/** A private folder for one client run; its config files are 0600 as fetchmail and msmtp insist. */
function workdir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mailotp-${prefix}-`));
  dirs.push(dir);
  return dir;
}

/** Removes the folders of every client run so far. */
export function removeClientDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

function writePrivate(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o600);
}

/** The messages of a maildir (new and cur), sorted, so two syncs compare whatever their file names. */
export function maildirMessages(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) out.push(readFileSync(join(dir, sub, n)));
  }
  return out.sort(Buffer.compare);
}

/** mbsync marks each message it stores with a random X-TUID header line; without it, messages compare. */
export function withoutTuid(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/^X-TUID: [^\n]*\n/m, ''), 'latin1');
}

export interface MbsyncRun extends ProcessResult {
  /** The synced INBOX's messages, without mbsync's X-TUID line, sorted. */
  messages: Buffer[];
}

/** mbsync (isync 1.4) pulls INBOX over implicit TLS with LOGIN into a fresh maildir. */
export async function mbsync(at: Endpoint, account: Account, opts: { timeoutSeconds?: number } = {}): Promise<MbsyncRun> {
  const dir = workdir('mbsync');
  const maildir = join(dir, 'mail');
  mkdirSync(maildir);
  const rc = join(dir, 'mbsyncrc');
  writePrivate(
    rc,
    [
      'IMAPAccount acc',
      // localhost (not 127.0.0.1): the certificate names it, and mbsync 1.4 checks DNS names only.
      'Host localhost',
      `Port ${at.port}`,
      `User ${account.user}`,
      `Pass ${account.password}`,
      'SSLType IMAPS',
      `CertificateFile ${at.caFile}`,
      'AuthMechs LOGIN',
      `Timeout ${opts.timeoutSeconds ?? 20}`,
      '',
      'IMAPStore far',
      'Account acc',
      '',
      'MaildirStore near',
      `Path ${maildir}/`,
      `Inbox ${maildir}/INBOX`,
      '',
      'Channel ch',
      'Far :far:',
      'Near :near:',
      'Patterns INBOX',
      'Create Near',
      'Sync Pull',
      'SyncState *',
      '',
    ].join('\n'),
  );
  const r = await run('mbsync', ['-c', rc, '-a'], dir);
  return { ...r, messages: maildirMessages(join(maildir, 'INBOX')).map(withoutTuid).sort(Buffer.compare) };
}

export interface FetchmailRun extends ProcessResult {
  /** What fetchmail handed its MDA, one entry per message, sorted. */
  delivered: Buffer[];
}

/** fetchmail 6.4, one poll over POP3 with implicit TLS, keeping the messages, each into a file by its MDA. */
export async function fetchmail(at: Endpoint, account: Account): Promise<FetchmailRun> {
  const dir = workdir('fetchmail');
  const out = join(dir, 'out');
  mkdirSync(out);
  const rc = join(dir, 'fetchmailrc');
  writePrivate(
    rc,
    [
      'set no syslog',
      `poll localhost via 127.0.0.1 port ${at.port} protocol pop3 timeout 30`,
      `  user "${account.user}" there with password "${account.password}" is "local" here`,
      `  ssl sslcertck sslcertfile "${at.caFile}" sslcommonname "localhost"`,
      '  keep fetchall',
      `  mda "/bin/sh -c 'cat > ${out}/msg.$$'"`,
      '',
    ].join('\n'),
  );
  const r = await run('fetchmail', ['-f', rc, '--pidfile', join(dir, 'pid'), '--idfile', join(dir, 'ids'), '--nodetach', '-v'], dir);
  const delivered = readdirSync(out)
    .map((n) => readFileSync(join(out, n)))
    .sort(Buffer.compare);
  return { ...r, delivered };
}

/** Drops the Received: header fetchmail puts first (with its folded lines): it names the port and time. */
export function withoutFetchmailReceived(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  return Buffer.from(text.replace(/^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/, ''), 'latin1');
}

/** msmtp 1.8 sends one message with AUTH PLAIN, over implicit TLS or STARTTLS. */
export async function msmtp(at: Endpoint & { starttls?: boolean }, account: Account, from: string, to: string[], message: Buffer): Promise<ProcessResult> {
  const dir = workdir('msmtp');
  const rc = join(dir, 'msmtprc');
  writePrivate(
    rc,
    [
      'defaults',
      'tls on',
      `tls_starttls ${at.starttls ? 'on' : 'off'}`,
      `tls_trust_file ${at.caFile}`,
      'account default',
      'host 127.0.0.1',
      `port ${at.port}`,
      'auth plain',
      `user ${account.user}`,
      `password ${account.password}`,
      `from ${from}`,
      '',
    ].join('\n'),
  );
  return run('msmtp', ['-C', rc, '--', ...to], dir, message);
}
