import net from 'node:net';
import tls from 'node:tls';
import { testCerts } from '../test/helpers/certs.js';

/**
 * A minimal IMAP client over TLS (or plain TCP with `plain`): one command at a time, counts bytes,
 * no parsing beyond tags.
 */
export class RawImap {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  bytes = 0;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.bytes += d.length;
      // Keep only the tail: FETCH bodies are large and only the tagged line matters.
      this.buf = this.buf.length > 65536 ? Buffer.concat([this.buf.subarray(-1024), d]) : Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
  }
  static async open(port: number, localAddress?: string, opts: { plain?: boolean } = {}): Promise<RawImap> {
    const where = { port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) };
    const sock = opts.plain ? net.connect(where) : tls.connect({ ...where, ca: testCerts().ca, servername: 'localhost' } as tls.ConnectionOptions);
    const c = new RawImap(sock);
    // A refused connection (a cap's `* BYE` greeting, then close) fails instead of waiting forever.
    const greeting = await c.until(/^\* (OK|BYE).*\r\n/m);
    if (!/^\* OK/m.test(greeting)) {
      c.close();
      throw new Error(`connection refused: ${greeting.trim().slice(0, 200)}`);
    }
    return c;
  }
  until(re: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        stop();
        reject(err);
      };
      const onClose = () => fail(new Error(`closed while waiting for ${re}: ${this.buf.toString('latin1').slice(-200)}`));
      const stop = () => {
        this.waiter = null;
        this.sock.off('error', fail);
        this.sock.off('close', onClose);
      };
      const check = () => {
        const text = this.buf.toString('latin1');
        if (re.test(text)) {
          stop();
          this.buf = Buffer.alloc(0);
          resolve(text);
        }
      };
      this.sock.on('error', fail);
      this.sock.on('close', onClose);
      this.waiter = check;
      check();
    });
  }
  async cmd(tag: string, line: string): Promise<string> {
    this.sock.write(`${tag} ${line}\r\n`);
    const out = await this.until(new RegExp(`^${tag} (OK|NO|BAD).*\\r\\n`, 'm'));
    if (!new RegExp(`^${tag} OK`, 'm').test(out)) throw new Error(`${line.split(' ')[0]} failed: ${out.slice(-200)}`);
    return out;
  }
  close(): void {
    this.sock.destroy();
  }
}

/** One login, timed from connect to the greeting and from there to the LOGIN's OK (ms), then LOGOUT. */
export async function timeLogin(port: number, user: string, pass: string, opts: { plain?: boolean } = {}): Promise<{ greeting: number; login: number }> {
  const t0 = process.hrtime.bigint();
  const c = await RawImap.open(port, undefined, opts);
  const t1 = process.hrtime.bigint();
  await c.cmd('a', `LOGIN ${user} ${pass}`);
  const t2 = process.hrtime.bigint();
  c.sock.write('z LOGOUT\r\n');
  c.close();
  return { greeting: Number(t1 - t0) / 1e6, login: Number(t2 - t1) / 1e6 };
}

export function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

