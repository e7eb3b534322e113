import net from 'node:net';
import tls from 'node:tls';
import { testCerts } from './certs.js';

/** A line-oriented test client (CRLF lines) that remembers everything the server said. */
export class LineClient {
  readonly lines: string[] = [];
  private cursor = 0;
  private pending = '';
  private wake: (() => void) | undefined;
  ended = false;
  readonly closed: Promise<void>;

  constructor(readonly sock: net.Socket) {
    sock.on('data', this.onData);
    sock.on('error', () => {});
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pending += chunk.toString('latin1');
    let i: number;
    while ((i = this.pending.indexOf('\r\n')) >= 0) {
      this.lines.push(this.pending.slice(0, i));
      this.pending = this.pending.slice(i + 2);
    }
    this.wake?.();
  };

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** The next line the server sent; throws when the connection closed first or nothing came in time. */
  async next(timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor >= this.lines.length) {
      if (this.ended) throw new Error(`connection closed; lines so far: ${JSON.stringify(this.lines)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms; lines so far: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.lines[this.cursor++] ?? '';
  }

  /** Lines up to and including the first one starting with `prefix`. */
  async until(prefix: string, timeoutMs = 3000): Promise<string[]> {
    const seen: string[] = [];
    for (;;) {
      const line = await this.next(timeoutMs);
      seen.push(line);
      if (line.startsWith(prefix)) return seen;
    }
  }

  /** Sends each line (CRLF added) in one write and reads one answer line per line sent. */
  async ask(...lines: string[]): Promise<string[]> {
    this.write(lines.map((l) => `${l}\r\n`).join(''));
    const out: string[] = [];
    for (let i = 0; i < lines.length; i++) out.push(await this.next());
    return out;
  }

  /** Resolves when the server closed the connection; fails when it did not within timeoutMs. */
  async expectClosed(timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`server did not close the connection; lines so far: ${JSON.stringify(this.lines)}`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lines received and not yet consumed by next(). */
  rest(): string[] {
    return this.lines.slice(this.cursor);
  }

  detach(): net.Socket {
    this.sock.removeListener('data', this.onData);
    return this.sock;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

async function connected(sock: net.Socket, event: 'connect' | 'secureConnect'): Promise<LineClient> {
  await new Promise<void>((resolve, reject) => {
    sock.once(event, resolve);
    sock.once('error', reject);
  });
  return new LineClient(sock);
}

export function connectPlain(port: number): Promise<LineClient> {
  return connected(net.connect(port, '127.0.0.1'), 'connect');
}

/** A TLS client that trusts the test CA only and checks the name localhost. */
export function connectTls(port: number): Promise<LineClient> {
  return connected(tls.connect({ port, host: '127.0.0.1', ca: testCerts().ca, servername: 'localhost' }), 'secureConnect');
}

/** Client side of STARTTLS/STLS, after the server's go-ahead was read. */
export function upgradeClient(c: LineClient): Promise<LineClient> {
  return connected(tls.connect({ socket: c.detach(), ca: testCerts().ca, servername: 'localhost' }), 'secureConnect');
}
