/**
 * POP3 RETR throughput over TLS, for `npm run bench` (direct to Dovecot's pop3s port or through
 * mailotp's). Call it on an approved path: a login that waits for a tap would time the tap.
 */
import tls from 'node:tls';

const TERMINATOR = Buffer.from('\r\n.\r\n');

/** A minimal POP3 client: one command at a time, counts bytes, keeps only what it must parse. */
class RawPop3 {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  bytes = 0;

  private constructor(private readonly sock: tls.TLSSocket) {
    sock.on('data', (d: Buffer) => {
      this.bytes += d.length;
      // RETR bodies are large and only their end matters: keep a short tail.
      this.buf = this.buf.length > 65536 ? Buffer.concat([this.buf.subarray(-16), d]) : Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      this.waiter?.();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  static async open(port: number, ca: Buffer): Promise<RawPop3> {
    const sock = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' });
    const c = new RawPop3(sock);
    await c.line();
    return c;
  }

  private until(done: (b: Buffer) => boolean): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done(this.buf)) {
          this.waiter = null;
          const out = this.buf;
          this.buf = Buffer.alloc(0);
          resolve(out);
        } else if (this.failure) {
          this.waiter = null;
          reject(this.failure);
        }
      };
      this.waiter = check;
      check();
    });
  }

  /** One status line; rejects on -ERR. */
  async line(): Promise<string> {
    const b = await this.until((x) => x.includes('\r\n'));
    const text = b.toString('latin1');
    if (!text.startsWith('+OK')) throw new Error(`POP3 said: ${text.slice(0, 200)}`);
    return text;
  }

  async cmd(line: string): Promise<string> {
    this.sock.write(`${line}\r\n`);
    return this.line();
  }

  /** RETR n to its terminating "." line; an -ERR is one short line and never trimmed away. */
  async retr(n: number): Promise<void> {
    this.sock.write(`RETR ${n}\r\n`);
    const refused = (x: Buffer) => x.toString('latin1', 0, 4) === '-ERR' && x.includes('\r\n');
    const b = await this.until((x) => refused(x) || (x.length >= 5 && x.subarray(-5).equals(TERMINATOR)));
    if (refused(b)) throw new Error(`RETR ${n} failed: ${b.toString('latin1', 0, 200)}`);
  }

  quit(): void {
    this.sock.end('QUIT\r\n');
    this.sock.destroy();
  }
}

/** One session: TLS, USER/PASS (not timed), then RETR 1..messages timed. MB/s (10^6 bytes). */
async function oneRun(port: number, user: string, pass: string, messages: number, ca: Buffer): Promise<number> {
  const c = await RawPop3.open(port, ca);
  try {
    await c.cmd(`USER ${user}`);
    await c.cmd(`PASS ${pass}`);
    const before = c.bytes;
    const t0 = process.hrtime.bigint();
    for (let i = 1; i <= messages; i++) await c.retr(i);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return (c.bytes - before) / seconds / 1e6;
  } finally {
    c.quit();
  }
}

/**
 * RETR throughput over implicit TLS on `port`: median of 3 runs, after one untimed run that warms
 * Dovecot's cache so a direct and a proxied path read the same way.
 */
export async function pop3RetrThroughput(port: number, user: string, pass: string, messages: number, ca: Buffer): Promise<number> {
  await oneRun(port, user, pass, messages, ca);
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push(await oneRun(port, user, pass, messages, ca));
  runs.sort((a, b) => a - b);
  return runs[1]!;
}
