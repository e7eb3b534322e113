import net from 'node:net';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { testCerts } from '../helpers/certs.js';
import { python, runProcess, type ProcessResult } from './harness.js';

/**
 * Python's smtplib (a client we did not write) driven by a JSON job: one connection, AUTH, then
 * each message in turn, with RSET between when asked. Prints one JSON line per step.
 */
const PY_SMTP = `
import json, smtplib, ssl, sys, base64
job = json.loads(sys.argv[1])
ctx = ssl.create_default_context(cafile=job['ca'])
src = (job['src'], 0)
def out(**kw): print(json.dumps(kw), flush=True)
try:
    if job['mode'] == 'ssl':
        s = smtplib.SMTP_SSL('127.0.0.1', job['port'], local_hostname='py.example', context=ctx, source_address=src, timeout=60)
    else:
        s = smtplib.SMTP('127.0.0.1', job['port'], local_hostname='py.example', source_address=src, timeout=60)
        s.ehlo('py.example')
        s.starttls(context=ctx)
    s.ehlo('py.example')
    out(step='ehlo', features=sorted(s.esmtp_features))
    code, text = s.login(job['user'], job['password'])
    out(step='login', code=code, text=text.decode())
    for i, m in enumerate(job.get('messages', [])):
        if i > 0 and job.get('rset'):
            out(step='rset', code=s.rset()[0])
        refused = s.sendmail(m['from'], m['to'], base64.b64decode(m['data']), m.get('mail_options', []))
        out(step='sent', refused=list(refused))
    s.quit()
except smtplib.SMTPResponseException as e:
    out(step='error', code=e.smtp_code, text=e.smtp_error.decode(errors='replace'))
except Exception as e:
    out(step='error', code=0, text=repr(e))
`;

export interface PyMessage {
  from: string;
  to: string[];
  data: Buffer;
  mailOptions?: string[];
}

export interface PyJob {
  mode: 'ssl' | 'starttls';
  port: number;
  src: string;
  user: string;
  password: string;
  messages?: PyMessage[];
  rset?: boolean;
}

export type PyStep = { step: string; code?: number; text?: string; features?: string[]; refused?: string[] };

export async function pySmtp(job: PyJob): Promise<{ steps: PyStep[]; result: ProcessResult }> {
  const payload = {
    ...job,
    ca: testCerts().caFile,
    messages: (job.messages ?? []).map((m) => ({ from: m.from, to: m.to, data: m.data.toString('base64'), mail_options: m.mailOptions ?? [] })),
  };
  const result = await python(PY_SMTP, [JSON.stringify(payload)]);
  const steps = result.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as PyStep);
  return { steps, result };
}

/** nodemailer: implicit TLS on the smtps port, STARTTLS (required) on the other. */
export function mailer(port: number, secure: boolean, user: string, pass: string, localAddress?: string): nodemailer.Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure,
    requireTLS: !secure,
    auth: { user, pass },
    tls: { ca: [testCerts().ca], servername: 'localhost' },
    ...(localAddress ? { localAddress } : {}),
    name: 'nodemailer.example',
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
    socketTimeout: 60_000,
  } as SMTPTransport.Options);
}

/** swaks with the test CA; `implicit` for the smtps port, STARTTLS otherwise. */
export function swaks(port: number, implicit: boolean, args: string[]): Promise<ProcessResult> {
  return runProcess('swaks', [
    '--server', `127.0.0.1:${port}`,
    implicit ? '--tls-on-connect' : '--tls',
    '--tls-verify', '--tls-ca-path', testCerts().caFile, '--tls-sni', 'localhost',
    '--timeout', '60s',
    ...args,
  ]);
}

/** A raw line client for protocol-level checks (STARTTLS, refusals) where a library would hide the wire. */
export class RawSmtp {
  private buf = '';
  private waiter: (() => void) | null = null;

  private constructor(public sock: net.Socket) {
    this.attach();
  }

  static async connect(port: number, implicit: boolean, localAddress?: string): Promise<RawSmtp> {
    const sock = implicit
      ? tls.connect({ port, host: '127.0.0.1', ca: testCerts().ca, servername: 'localhost', ...(localAddress ? { localAddress } : {}) })
      : net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => sock.once(implicit ? 'secureConnect' : 'connect', resolve).once('error', reject));
    const c = new RawSmtp(sock);
    await c.reply();
    return c;
  }

  private attach(): void {
    this.sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.waiter?.();
    });
    this.sock.on('error', () => undefined);
  }

  /** The next complete (possibly multi-line) reply. */
  reply(timeoutMs = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply in ${timeoutMs} ms; have ${JSON.stringify(this.buf)}`)), timeoutMs);
      const check = () => {
        const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buf);
        if (!m) return;
        this.buf = this.buf.slice(m[0].length);
        this.waiter = null;
        clearTimeout(timer);
        resolve(m[0]);
      };
      this.waiter = check;
      check();
    });
  }

  async cmd(line: string | Buffer): Promise<string> {
    this.sock.write(typeof line === 'string' ? `${line}\r\n` : line);
    return this.reply();
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** Client side of STARTTLS, after the 220 was read. */
  async upgrade(): Promise<void> {
    this.sock.removeAllListeners('data');
    const secure = tls.connect({ socket: this.sock, ca: testCerts().ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.sock = secure;
    this.attach();
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The message as the submitting client sent it: Dovecot prepends exactly one Received header. */
export function withoutReceived(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const m = /^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/.exec(text);
  return m ? raw.subarray(Buffer.byteLength(m[0], 'latin1')) : raw;
}

export const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
