import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { testCerts } from '../helpers/certs.js';
import type { DovecotHandle } from '../helpers/dovecot.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'mailotp');

export interface MailotpOptions {
  dovecot: DovecotHandle;
  /** Upstream IMAP transport: implicit TLS to imaps, STARTTLS or plain to imap. */
  upstreamTls?: 'implicit' | 'starttls' | 'none';
  daemonOtp?: Record<string, unknown>;
  store?: Record<string, unknown>;
  limits?: Record<string, unknown>;
  push?: Record<string, unknown>;
  /** The `users` section (how the upstream folds names). */
  users?: Record<string, unknown>;
  /** Merged over the portal settings (host 127.0.0.1, a free port, HTTPS). */
  portal?: Record<string, unknown>;
  logLevel?: string;
  /** The `metrics` section (host, port). */
  metrics?: Record<string, unknown>;
  /** Reuse another instance's folder (same SQLite file). */
  dir?: string;
  /** Also an imaps listener that takes a PROXY protocol header (its port: imapsProxied). */
  proxyProtocol?: boolean;
  /** Certificate and key files instead of the shared test pair (a test that replaces them, then SIGHUPs). */
  tls?: { cert: string; key: string };
  /** shutdown.drainTimeout; 2s unless a test needs its spliced sessions to outlive a SIGTERM longer. */
  drainTimeout?: string;
  /**
   * Keep only about this many characters of the child's stdout (benchmarks: tens of thousands of
   * logins must not grow the measuring process's heap); the whole output otherwise.
   */
  keepStdout?: number;
  /** Node options before the binary (benchmarks comparing V8 flags), e.g. ['--single-threaded-gc']. */
  nodeArgs?: string[];
}

export interface MailotpProcess {
  dir: string;
  configFile: string;
  imaps: number;
  imapStarttls: number;
  /** 0 while the protocol is not served. */
  pop3s: number;
  pop3Starttls: number;
  smtps: number;
  smtpStarttls: number;
  /** 0 unless proxyProtocol was asked for. */
  imapsProxied: number;
  portal: number;
  child: ChildProcess;
  log(): string;
  /** Parsed JSON log lines. */
  events(): Record<string, unknown>[];
  waitForLog(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export type ProcessResult = { code: number | null; stdout: string; stderr: string };

/** Runs a command to its end (stdin: fed, else closed) and collects its output. */
export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, stdin?: Buffer): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The built `mailotp` binary. */
export function runBin(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [BIN, ...args], env);
}

/** Writes a config for the bundled Dovecot and starts the built `mailotp start` as a child process. */
export async function startMailotp(opts: MailotpOptions): Promise<MailotpProcess> {
  const certs = testCerts();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'mailotp-e2e-'));
  const ownsDir = opts.dir === undefined;
  const upstreamTls = opts.upstreamTls ?? 'implicit';
  const d = opts.dovecot;
  const config = {
    listeners: [
      { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
      { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'starttls' },
      { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'implicit' },
      { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'starttls' },
      { protocol: 'smtp', host: '127.0.0.1', port: 0, tls: 'implicit' },
      { protocol: 'smtp', host: '127.0.0.1', port: 0, tls: 'starttls' },
      ...(opts.proxyProtocol ? [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit', proxyProtocol: true }] : []),
    ],
    tls: opts.tls ?? { cert: certs.certFile, key: certs.keyFile },
    upstream: {
      imap: { host: d.host, port: upstreamTls === 'implicit' ? d.ports.imaps : d.ports.imap, tls: upstreamTls, ca: certs.caFile, servername: 'localhost' },
      pop3: { host: d.host, port: upstreamTls === 'implicit' ? d.ports.pop3s : d.ports.pop3, tls: upstreamTls, ca: certs.caFile, servername: 'localhost' },
      // The test Dovecot has no implicit-TLS submission port: STARTTLS stands in for "TLS upstream".
      smtp: { host: d.host, port: d.ports.submission, tls: upstreamTls === 'none' ? 'none' : 'starttls', ca: certs.caFile, servername: 'localhost' },
    },
    store: opts.store ?? { driver: 'sqlite', path: 'data/mailotp.db' },
    daemonOtp: { holdTime: '10s', progressInterval: '1s', ...opts.daemonOtp },
    portal: { host: '127.0.0.1', port: 0, tls: true, publicUrl: 'https://localhost:8443', ...opts.portal },
    push: opts.push ?? {},
    limits: { failedLoginsPerUser: 50, failedLoginsPerIp: 200, ...opts.limits },
    ...(opts.users ? { users: opts.users } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    shutdown: { drainTimeout: opts.drainTimeout ?? '2s' },
    log: { level: opts.logLevel ?? 'debug' },
  };
  const configFile = join(dir, `mailotp-${Math.random().toString(36).slice(2, 8)}.json`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const keep = opts.keepStdout ?? Infinity;
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 2 * keep) out = out.slice(out.indexOf('\n', out.length - keep) + 1);
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const events = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  const waitForLog = (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = events().find(pred);
        if (hit) {
          cleanup();
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${err}\nstdout tail: ${out.slice(-3000)}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`mailotp exited early; stderr: ${err}\nstdout: ${out.slice(-3000)}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });

  let started: Record<string, unknown>;
  try {
    // Generous: on a loaded machine (the suite shares two cores) a start can take well over 15 s.
    started = await waitForLog((e) => e.msg === 'mailotp started', 40_000);
  } catch (err) {
    // Never leave a half-started server behind a failed test.
    child.kill('SIGKILL');
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const bound = started.listeners as { protocol: string; tls: string; port: number }[];
  const portOf = (protocol: string, mode: string) => bound.find((l) => l.protocol === protocol && l.tls === mode)?.port ?? 0;
  const portal = (started.portal as { port: number }).port;
  return {
    dir,
    configFile,
    imaps: portOf('imap', 'implicit'),
    imapStarttls: portOf('imap', 'starttls'),
    pop3s: portOf('pop3', 'implicit'),
    pop3Starttls: portOf('pop3', 'starttls'),
    smtps: portOf('smtp', 'implicit'),
    smtpStarttls: portOf('smtp', 'starttls'),
    // Listed in config order: the proxied one comes last.
    imapsProxied: opts.proxyProtocol ? (bound[bound.length - 1]?.port ?? 0) : 0,
    portal,
    child,
    log: () => out + err,
    events,
    waitForLog,
    cli: (args) => runBin([...args, '--config', configFile]),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const code = await exited;
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Calls the device API over HTTPS, trusting the test CA. */
export function deviceApi(port: number, token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: testCerts().ca,
        servername: 'localhost',
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let data = '';
        res.on('data', (c: Buffer) => (data += c.toString()));
        res.on('end', () => {
          let json: unknown = null;
          try {
            json = data ? JSON.parse(data) : null;
          } catch {
            json = data;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export interface ApiRequest {
  id: string;
  type: string;
  user: string;
  protocol: string;
  clientIp: string;
  clientName: string | null;
  createdAt: string;
  expiresAt: string;
}

/** Polls the device API until a pending request shows up (what the phone app does without push). */
export async function waitForRequest(port: number, token: string, pred: (r: ApiRequest) => boolean = () => true, timeoutMs = 30_000): Promise<ApiRequest> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await deviceApi(port, token, 'GET', '/api/v1/device/requests');
    const list = (r.json as { requests?: ApiRequest[] } | null)?.requests ?? [];
    const hit = list.find(pred);
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no pending request in ${timeoutMs} ms (last: ${JSON.stringify(r.json)})`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export async function decide(port: number, token: string, id: string, decision: 'approve' | 'deny' | 'report'): Promise<{ status: number; json: unknown }> {
  return deviceApi(port, token, 'POST', `/api/v1/device/requests/${id}`, { decision });
}

/** Binds a device with the real CLI and turns the user's switch on; returns the device token. */
export async function enrol(m: MailotpProcess, user: string): Promise<string> {
  const set = await m.cli(['user', 'set', user, '--daemon-otp', 'on']);
  if (set.code !== 0) throw new Error(`user set failed: ${set.stderr}`);
  const add = await m.cli(['device', 'add', user, '--name', 'Test phone', '--json', '--replace']);
  if (add.code !== 0) throw new Error(`device add failed: ${add.stderr}`);
  return (JSON.parse(add.stdout) as { token: string }).token;
}

export function imapClient(port: number, user: string, pass: string, opts: { localAddress?: string; loginMethod?: string } = {}): ImapFlow {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: true,
    servername: 'localhost',
    auth: opts.loginMethod ? { user, pass, loginMethod: opts.loginMethod } : { user, pass },
    tls: { ca: [testCerts().ca], ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) } as object,
    logger: false,
    clientInfo: { name: 'imapflow-e2e' },
    disableAutoIdle: true,
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
  });
  client.on('error', () => undefined);
  return client;
}

/** Runs a Python snippet (imaplib is a client we did not write); argv after the script is passed on. */
export function python(script: string, args: string[] = []): Promise<ProcessResult> {
  return runProcess('python3', ['-c', script, ...args]);
}

/** imaplib over implicit TLS, from a chosen source address; prints the login reply or the error. */
export const PY_IMAP_LOGIN = `
import imaplib, socket, ssl, sys
host, port, ca, user, pw, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
class Client(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection((host, port), timeout, source_address=(src, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname='localhost')
ctx = ssl.create_default_context(cafile=ca)
c = Client(host, port, ssl_context=ctx, timeout=60)
try:
    typ, data = c.login(user, pw)
    print('LOGIN', typ, data[0].decode())
    typ, data = c.select('INBOX')
    print('SELECT', typ, data[0].decode())
    c.logout()
except imaplib.IMAP4.error as e:
    print('ERROR', e)
`;

export function cleanupDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
