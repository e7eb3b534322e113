/** Raw TLS sockets from chosen loopback source addresses: what a flood of clients looks like. */
import net from 'node:net';
import tls from 'node:tls';
import { testCerts } from '../helpers/certs.js';

export interface RawConnection {
  socket: tls.TLSSocket;
  /** Everything received so far. */
  received(): string;
  /** Resolves with the first line that matches (or the first line at all). */
  line(pred?: (l: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves once the server closed the connection. */
  closed: Promise<void>;
}

/** Opens implicit TLS to 127.0.0.1:port from localAddress. */
export function rawConnect(port: number, localAddress: string): RawConnection {
  const socket = tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), ca: testCerts().ca, servername: 'localhost' });
  let buf = '';
  const waiters = new Set<() => void>();
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (const w of waiters) w();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => {
    for (const w of waiters) w();
  });
  return {
    socket,
    received: () => buf,
    closed,
    line(pred = () => true, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = buf.split('\r\n').slice(0, -1).find(pred);
          if (hit !== undefined) done(hit);
          else if (socket.destroyed) done(new Error(`closed without the line from ${localAddress}: ${JSON.stringify(buf)}`));
        };
        const timer = setTimeout(() => done(new Error(`no line from ${localAddress} in time: ${JSON.stringify(buf)}`)), timeoutMs);
        const done = (r: string | Error): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (r instanceof Error) reject(r);
          else resolve(r);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** One IMAP LOGIN over implicit TLS from localAddress; the tagged reply, or the greeting when it was a refusal. */
export async function rawImapLogin(port: number, localAddress: string, user: string, password: string): Promise<string> {
  const c = rawConnect(port, localAddress);
  try {
    const greeting = await c.line();
    if (!greeting.startsWith('* OK')) return greeting;
    c.socket.write(`a LOGIN ${user} ${password}\r\n`);
    return await c.line((l) => l.startsWith('a '));
  } finally {
    c.socket.destroy();
  }
}
