import type { X509Certificate } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import type { Protocol } from '../core/types.js';
import { connectUpstream } from '../upstream/connect-upstream.js';
import { ResponseReader } from '../upstream/response-reader.js';
import { endPolitely } from '../upstream/upstream-session.js';

/** What a mail port answered: its greeting, and over TLS the certificate it presented. */
export interface MailProbeResult {
  greeting: string;
  certificate: X509Certificate | null;
}

/** The first line a healthy server of each protocol sends. */
const GREETING: Record<Protocol, RegExp> = { imap: /^\* OK\b/i, pop3: /^\+OK\b/i, smtp: /^220[ -]/ };
const GOODBYE: Record<Protocol, string> = { imap: 'd9 LOGOUT', pop3: 'QUIT', smtp: 'QUIT' };

export function clip(text: string, max = 80): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** One SMTP reply (its lines joined), IMAP/POP3 answers are one line unless tagged. */
async function readSmtpReply(reader: ResponseReader, timeoutMs: number): Promise<string> {
  const lines: string[] = [];
  for (;;) {
    const line = await reader.readLine(timeoutMs);
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return lines.join(' | ');
  }
}

async function readGreeting(protocol: Protocol, socket: net.Socket, timeoutMs: number): Promise<string> {
  const reader = new ResponseReader(socket, { imapLiterals: false });
  try {
    const greeting = protocol === 'smtp' ? await readSmtpReply(reader, timeoutMs) : await reader.readLine(timeoutMs);
    if (!GREETING[protocol].test(greeting)) throw new Error(`unexpected greeting "${clip(greeting)}"`);
    return greeting;
  } finally {
    reader.detach();
  }
}

/** The protocol's STARTTLS command on a plain socket whose greeting was read; resolves on the go-ahead. */
async function startTls(protocol: Protocol, socket: net.Socket, timeoutMs: number): Promise<void> {
  const reader = new ResponseReader(socket, { imapLiterals: false });
  const expect = (answer: string, ok: RegExp, command: string) => {
    if (!ok.test(answer)) throw new Error(`${command} answered "${clip(answer)}"`);
  };
  try {
    switch (protocol) {
      case 'imap': {
        socket.write('d1 STARTTLS\r\n');
        let line = await reader.readLine(timeoutMs);
        while (line.startsWith('* ')) line = await reader.readLine(timeoutMs);
        expect(line, /^d1 OK\b/i, 'STARTTLS');
        return;
      }
      case 'pop3':
        socket.write('STLS\r\n');
        expect(await reader.readLine(timeoutMs), /^\+OK\b/i, 'STLS');
        return;
      case 'smtp':
        socket.write('EHLO mailotp-doctor\r\n');
        expect(await readSmtpReply(reader, timeoutMs), /^250[ -]/, 'EHLO');
        socket.write('STARTTLS\r\n');
        expect(await readSmtpReply(reader, timeoutMs), /^220[ -]/, 'STARTTLS');
        return;
    }
  } finally {
    reader.detach();
  }
}

/**
 * Connects to a mail port the way a client does (implicit TLS, STARTTLS after the greeting, or
 * plain), checks the greeting is the protocol's (IMAP `* OK`, POP3 `+OK`, SMTP `220`), says goodbye.
 * The endpoint's verify/ca/servername decide whether the certificate must be trusted.
 */
export async function probeMailPort(protocol: Protocol, endpoint: UpstreamEndpoint): Promise<MailProbeResult> {
  const timeoutMs = endpoint.connectTimeout;
  let greeting = '';
  const socket = await connectUpstream(endpoint, {
    starttls: async (plain) => {
      greeting = await readGreeting(protocol, plain, timeoutMs);
      await startTls(protocol, plain, timeoutMs);
    },
  });
  try {
    if (endpoint.tls !== 'starttls') greeting = await readGreeting(protocol, socket, timeoutMs);
    const certificate = socket instanceof tls.TLSSocket ? (socket.getPeerX509Certificate() ?? null) : null;
    return { greeting, certificate };
  } finally {
    endPolitely(socket, GOODBYE[protocol]);
  }
}
