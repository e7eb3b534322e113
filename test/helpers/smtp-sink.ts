import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** One message as the sink received it: the envelope, and the content after dot-unstuffing. */
export interface SinkMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  /** MAIL FROM parameters as the relay sent them (e.g. { BODY: '8BITMIME', SMTPUTF8: true }). */
  mailParams: Record<string, string | boolean>;
}

export interface SmtpSink {
  port: number;
  messages: SinkMessage[];
  /** Resolves once `n` messages in all have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  stop(): Promise<void>;
}

export const SINK_SIZE_LIMIT = 40 * 1024 * 1024;

/**
 * The relay host of the test Dovecot's submission service (startDovecot({ relayPort })): an
 * smtp-server on 127.0.0.1 without auth or TLS that keeps every delivered message.
 */
export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: SINK_SIZE_LIMIT,
    logger: false,
    // Dovecot keeps its relay connection open; stop() must not wait 30 s for it.
    closeTimeout: 200,
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (stream.sizeExceeded) return callback(Object.assign(new Error('message too big for the sink'), { responseCode: 552 }));
        const { mailFrom, rcptTo } = session.envelope;
        messages.push({
          mailFrom: mailFrom ? mailFrom.address : '',
          rcptTo: rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          mailParams: (mailFrom && typeof mailFrom.args === 'object' ? mailFrom.args : {}) as Record<string, string | boolean>,
        });
        for (const w of waiters) w();
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  const waitFor = (n: number, timeoutMs = 20_000) =>
    new Promise<SinkMessage[]>((resolve, reject) => {
      const check = () => {
        if (messages.length < n) return;
        done();
        resolve(messages.slice(0, n));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the sink has ${messages.length} of ${n} messages after ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return {
    port,
    messages,
    waitFor,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
