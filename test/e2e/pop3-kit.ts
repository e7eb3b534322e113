import net from 'node:net';
import tls from 'node:tls';
import { testCerts } from '../helpers/certs.js';
import { python, runProcess, type MailotpProcess, type ProcessResult } from './harness.js';

/**
 * poplib (a client we did not write) from a chosen source address. mode "ssl": POP3_SSL; mode
 * "stls": plain POP3, CAPA, then stls(). Prints one line per step, or "ERROR <server line>".
 */
export const PY_POP3 = `
import base64, poplib, socket, ssl, sys
mode, host, port, ca, user, pw, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
def create(self, timeout):
    return socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))
poplib.POP3._create_socket = create
ctx = ssl.create_default_context(cafile=ca)
try:
    if mode == 'ssl':
        c = poplib.POP3_SSL(host, port, context=ctx, timeout=60)
    else:
        c = poplib.POP3(host, port, timeout=60)
        print('CAPA', ' '.join(sorted(c.capa())))
        print('STLS', c.stls(context=ctx).decode())
        print('CAPA-TLS', ' '.join(sorted(c.capa())))
    print('WELCOME', c.getwelcome().decode())
    print('USER', c.user(user).decode())
    print('PASS', c.pass_(pw).decode())
    count, size = c.stat()
    print('STAT', count, size)
    if count > 0:
        resp, lines, octets = c.retr(1)
        print('RETR', base64.b64encode(b'\\r\\n'.join(lines) + b'\\r\\n').decode())
    print('QUIT', c.quit().decode())
except poplib.error_proto as e:
    msg = e.args[0]
    print('ERROR', msg.decode() if isinstance(msg, bytes) else msg)
`;

export interface PopRun extends ProcessResult {
  /** First word of each output line -> the rest ("PASS" -> "+OK Logged in."). */
  steps: Record<string, string>;
}

export async function pyPop3(mode: 'ssl' | 'stls', port: number, user: string, pass: string, src: string): Promise<PopRun> {
  const r = await python(PY_POP3, [mode, '127.0.0.1', String(port), testCerts().caFile, user, pass, src]);
  const steps: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) steps[line.slice(0, i)] = line.slice(i + 1);
  }
  return { ...r, steps };
}

export interface CurlOptions {
  /** "" lists the messages, "1" retrieves message 1. */
  path?: string;
  src?: string;
  /** Force a SASL mechanism (curl picks one from CAPA otherwise). */
  mech?: 'PLAIN' | 'LOGIN';
  saslIr?: boolean;
  /** Plain pop3:// with STLS required instead of pop3s://. */
  starttls?: boolean;
}

/** curl as a POP3 client; -v puts the protocol lines ("> AUTH PLAIN") on stderr. */
export function curlPop3(port: number, user: string, pass: string, o: CurlOptions = {}): Promise<ProcessResult> {
  const url = `${o.starttls ? 'pop3' : 'pop3s'}://127.0.0.1:${port}/${o.path ?? ''}`;
  return runProcess('curl', [
    '-sS',
    '-v',
    '--max-time',
    '30',
    '--cacert',
    testCerts().caFile,
    ...(o.starttls ? ['--ssl-reqd'] : []),
    ...(o.src ? ['--interface', o.src] : []),
    ...(o.mech ? ['--login-options', `AUTH=${o.mech}`] : []),
    ...(o.saslIr ? ['--sasl-ir'] : []),
    '-u',
    `${user}:${pass}`,
    url,
  ]);
}

/** The client lines curl sent ("> ..."), from its -v output. */
export function curlSent(r: ProcessResult): string[] {
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('> '))
    .map((l) => l.slice(2).trimEnd());
}

/** A raw line client for what no library lets us do (injection, pipelining). */
export class RawPop3 {
  private buf = '';
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(readonly sock: net.Socket | tls.TLSSocket) {
    sock.on('data', this.onData);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  static async plain(port: number): Promise<RawPop3> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    return new RawPop3(sock);
  }

  static async secure(port: number, localAddress?: string): Promise<RawPop3> {
    const sock = tls.connect({ port, host: '127.0.0.1', ca: testCerts().ca, servername: 'localhost', ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
    return new RawPop3(sock);
  }

  private readonly onData = (d: Buffer): void => {
    this.buf += d.toString('latin1');
    this.wake?.();
  };

  write(text: string): void {
    this.sock.write(text);
  }

  /** Lines (without CRLF) up to and including the first that matches. */
  async until(re: RegExp, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buf.split('\r\n');
      const complete = lines.slice(0, -1);
      const hit = complete.findIndex((l) => re.test(l));
      if (hit >= 0) {
        this.buf = lines.slice(hit + 1).join('\r\n');
        return complete.slice(0, hit + 1);
      }
      const left = deadline - Date.now();
      if (this.closed || left <= 0) throw new Error(`no line matching ${re}; got ${JSON.stringify(this.buf)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Client side of STLS once "+OK" was read: a new RawPop3 over TLS on the same socket. */
  async upgrade(): Promise<RawPop3> {
    this.sock.removeListener('data', this.onData);
    const secure = tls.connect({ socket: this.sock, ca: testCerts().ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    return new RawPop3(secure);
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/**
 * Binds a device with the real CLI, nothing else: with daemonOtp.enforce "bound" that alone turns
 * two-factor on, at one CLI run (about a second) per user instead of enrol()'s two.
 */
export async function bindDevice(m: MailotpProcess, user: string): Promise<string> {
  const add = await m.cli(['device', 'add', user, '--name', 'Test phone', '--json']);
  if (add.code !== 0) throw new Error(`device add failed: ${add.stderr}`);
  return (JSON.parse(add.stdout) as { token: string }).token;
}
