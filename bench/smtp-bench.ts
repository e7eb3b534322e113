/**
 * SMTP submission throughput for `npm run bench`: one authenticated TLS session sends `count`
 * messages of `size` bytes; the clock stops when the relay sink has all of them. The same function
 * measures mailotp's smtps port (implicit TLS) and Dovecot's submission port directly (STARTTLS),
 * so the two can be compared.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SmtpSink } from '../test/helpers/smtp-sink.js';

/** A minimal SMTP client: sends lines, reads whole replies, checks their codes. */
class BenchSmtp {
  private buf = '';
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  private constructor(private sock: net.Socket) {
    this.listen();
  }

  static async open(port: number, ca: Buffer, mode: 'implicit' | 'starttls'): Promise<BenchSmtp> {
    const connectOpts = { port, host: '127.0.0.1' };
    const sock = mode === 'implicit' ? tls.connect({ ...connectOpts, ca, servername: 'localhost' }) : net.connect(connectOpts);
    await new Promise<void>((resolve, reject) => sock.once(mode === 'implicit' ? 'secureConnect' : 'connect', resolve).once('error', reject));
    sock.setNoDelay(true);
    const c = new BenchSmtp(sock);
    await c.expect(220);
    if (mode === 'starttls') {
      await c.command('EHLO bench.example', 250);
      await c.command('STARTTLS', 220);
      sock.removeAllListeners('data');
      const secure = tls.connect({ socket: sock, ca, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
      c.sock = secure;
      c.listen();
    }
    return c;
  }

  private listen(): void {
    this.sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.waiter?.();
    });
    this.sock.on('error', (err) => {
      this.failure = err;
      this.waiter?.();
    });
  }

  /** The next complete reply; throws unless its code is `code`. */
  expect(code: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) return reject(this.failure);
        const m = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\r?\n/.exec(this.buf);
        if (!m) return;
        this.buf = this.buf.slice(m[0].length);
        this.waiter = null;
        if (Number(m[1]) !== code) reject(new Error(`expected ${code}, got ${m[0].trim()}`));
        else resolve(m[0]);
      };
      this.waiter = check;
      check();
    });
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  command(line: string, code: number): Promise<string> {
    this.write(`${line}\r\n`);
    return this.expect(code);
  }

  close(): void {
    this.sock.end('QUIT\r\n');
    setTimeout(() => this.sock.destroy(), 500).unref();
  }
}

/** A message of about `size` bytes in 76-character lines (none starts with "."), ending in CRLF. */
function benchMessage(size: number, i: number): Buffer {
  const header = `From: bench@example.com\r\nTo: sink@example.org\r\nSubject: smtp bench ${i}\r\nMessage-ID: <smtp-bench-${i}-${Date.now()}@example.com>\r\n\r\n`;
  const line = `${'x'.repeat(74)}\r\n`;
  return Buffer.from(header + line.repeat(Math.max(1, Math.ceil((size - header.length) / line.length))));
}

/**
 * Messages per second over one authenticated session: EHLO and AUTH PLAIN first (not timed), then
 * MAIL/RCPT/DATA pipelined per message as PIPELINING clients do, until the sink holds every one.
 */
export async function smtpMessagesPerSecond(
  port: number,
  user: string,
  pass: string,
  size: number,
  count: number,
  ca: Buffer,
  sink: Pick<SmtpSink, 'messages' | 'waitFor'>,
  mode: 'implicit' | 'starttls' = 'implicit',
): Promise<number> {
  const c = await BenchSmtp.open(port, ca, mode);
  try {
    await c.command('EHLO bench.example', 250);
    await c.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`, 'utf8').toString('base64')}`, 235);
    const messages = Array.from({ length: count }, (_, i) => benchMessage(size, i));
    const before = sink.messages.length;
    const t0 = process.hrtime.bigint();
    for (const message of messages) {
      c.write(`MAIL FROM:<${user}@example.com>\r\nRCPT TO:<sink@example.org>\r\nDATA\r\n`);
      await c.expect(250);
      await c.expect(250);
      await c.expect(354);
      c.write(message);
      c.write('.\r\n');
      await c.expect(250);
    }
    await sink.waitFor(before + count, 120_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return count / seconds;
  } finally {
    c.close();
  }
}
