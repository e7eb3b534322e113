/**
 * Incremental, bounded reader of SMTP command lines (RFC 5321 2.3.8) for the pre-AUTH dialogue.
 *
 * Pull-based like the IMAP reader: the session pushes every byte but only pulls lines while it is
 * willing to act on them, so whatever the client pipelined behind AUTH stays untouched for
 * `takeRemaining()` and reaches the upstream byte for byte.
 */

import { LineBuffer } from '../shared/line-buffer.js';

export type SmtpReadResult =
  /** One line without its line end (CRLF, or a bare LF, which clients in the wild send). */
  | { type: 'line'; line: Buffer }
  /** A line past maxLineLength; its bytes were dropped up to and including its line end. */
  | { type: 'error'; kind: 'line-too-long' };

export interface SmtpReaderOptions {
  maxLineLength: number;
}

const LF = 0x0a;

export class SmtpCommandReader {
  private readonly buffer = new LineBuffer(1024);
  /** Dropping an over-long line up to its LF: memory stays bounded whatever the client sends. */
  private discarding = false;
  /** The over-long line has ended; next() reports it before any later line. */
  private owedError = false;
  /** Bytes still to drop for a refused BDAT chunk. */
  private skipping = 0;

  constructor(private readonly opts: SmtpReaderOptions) {}

  /** Bytes held and not yet returned as a line. */
  get buffered(): number {
    return this.buffer.buffered;
  }

  push(chunk: Buffer): void {
    let bytes = chunk;
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, bytes.length);
      this.skipping -= n;
      bytes = bytes.subarray(n);
    }
    if (this.discarding) {
      const lf = bytes.indexOf(LF);
      if (lf < 0) return;
      this.discarding = false;
      this.owedError = true;
      bytes = bytes.subarray(lf + 1);
    }
    if (bytes.length > 0) this.buffer.append(bytes);
  }

  /**
   * The next line or error, or null when more bytes are needed. Lengths are judged here, not in
   * push(): bytes nobody pulls (pipelined behind AUTH) belong to the upstream and are never cut.
   */
  next(): SmtpReadResult | null {
    if (this.owedError) {
      this.owedError = false;
      return { type: 'error', kind: 'line-too-long' };
    }
    const line = this.buffer.nextLine(this.opts.maxLineLength);
    if (line === null) {
      // +1: the CR of a line of exactly maxLineLength may be in while its LF is not.
      if (this.buffer.buffered > this.opts.maxLineLength + 1) {
        // Everything buffered is the head of that one line.
        this.discarding = true;
        this.buffer.clear();
      }
      return null;
    }
    if (line === 'too-long') return { type: 'error', kind: 'line-too-long' };
    return { type: 'line', line };
  }

  /**
   * Drops the next `count` bytes unread: the chunk of a refused BDAT. Its octets follow the command
   * line at once (RFC 3030), so they must not be taken for commands.
   */
  skip(count: number): void {
    this.skipping = count - this.buffer.skip(count);
  }

  /** Hands over every byte not yet returned as a line, and empties the reader. */
  takeRemaining(): Buffer {
    return this.buffer.take();
  }

  /** Forgets everything buffered (STARTTLS: plaintext sent before the handshake is never trusted). */
  clear(): void {
    this.buffer.clear();
    this.discarding = this.owedError = false;
    this.skipping = 0;
  }
}

export interface SmtpCommand {
  /** Upper-cased; '' when the line does not start with a command word. */
  verb: string;
  /** The text after the verb and one space (latin1, so every byte survives). */
  arg: string;
}

/** Splits a command line into its verb and argument text (RFC 5321 4.1.1: verbs are case-insensitive). */
export function parseCommand(line: Buffer): SmtpCommand {
  const text = line.toString('latin1');
  const m = /^([A-Za-z]{1,16})(?:[ \t]+(.*))?$/s.exec(text);
  if (!m) return { verb: '', arg: text };
  return { verb: m[1]!.toUpperCase(), arg: (m[2] ?? '').replace(/[ \t]+$/, '') };
}

const LOG_LIMIT = 200;

/** Verbs whose argument is never a secret. */
const SHOWN = new Set(['EHLO', 'HELO', 'LHLO', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'HELP', 'STARTTLS', 'VRFY', 'EXPN']);

/** The verb when it is a known one; anything else may be a password sent out of turn. */
export function loggableVerb(cmd: SmtpCommand): string {
  return cmd.verb === 'AUTH' || SHOWN.has(cmd.verb) ? cmd.verb : '(unknown)';
}

/**
 * The line as loggable text. AUTH shows its mechanism only, a SASL response line and an unknown
 * verb nothing, so neither an initial response nor a password typed out of turn ends up in a log.
 */
export function maskForLog(cmd: SmtpCommand | { sasl: true }): string {
  if ('sasl' in cmd) return '***';
  let shown: string;
  if (cmd.verb === 'AUTH') shown = `AUTH ${(cmd.arg.split(' ', 1)[0] ?? '').slice(0, 20)}${cmd.arg.includes(' ') ? ' ***' : ''}`;
  else if (SHOWN.has(cmd.verb)) shown = `${cmd.verb} ${cmd.arg}`.trim();
  else return `(unknown command, ${cmd.verb.length + cmd.arg.length} bytes)`;
  const printable = shown.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return printable.length > LOG_LIMIT ? `${printable.slice(0, LOG_LIMIT)}...` : printable;
}
