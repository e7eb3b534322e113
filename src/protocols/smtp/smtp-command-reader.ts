/**
 * Incremental, bounded reader of SMTP command lines (RFC 5321 2.3.8) for the pre-AUTH dialogue.
 *
 * Pull-based like the IMAP reader: the session pushes every byte but only pulls lines while it is
 * willing to act on them, so whatever the client pipelined behind AUTH stays untouched for
 * `takeRemaining()` and reaches the upstream byte for byte.
 */

export type SmtpReadResult =
  /** One line without its line end (CRLF, or a bare LF, which clients in the wild send). */
  | { type: 'line'; line: Buffer }
  /** A line past maxLineLength; its bytes were dropped up to and including its line end. */
  | { type: 'error'; kind: 'line-too-long' };

export interface SmtpReaderOptions {
  maxLineLength: number;
}

const LF = 0x0a;
const CR = 0x0d;

export class SmtpCommandReader {
  private data = Buffer.allocUnsafe(1024);
  private start = 0;
  private end = 0;
  /** Where the search for the next LF resumes. */
  private scanPos = 0;
  /** Dropping an over-long line up to its LF: memory stays bounded whatever the client sends. */
  private discarding = false;
  /** The over-long line has ended; next() reports it before any later line. */
  private owedError = false;
  /** Bytes still to drop for a refused BDAT chunk. */
  private skipping = 0;

  constructor(private readonly opts: SmtpReaderOptions) {}

  /** Bytes held and not yet returned as a line. */
  get buffered(): number {
    return this.end - this.start;
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
    if (bytes.length > 0) this.append(bytes);
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
    const lf = this.data.subarray(0, this.end).indexOf(LF, this.scanPos);
    if (lf < 0) {
      this.scanPos = this.end;
      // +1: the CR of a line of exactly maxLineLength may be in while its LF is not.
      if (this.end - this.start > this.opts.maxLineLength + 1) {
        // Everything buffered is the head of that one line.
        this.discarding = true;
        this.start = this.end = this.scanPos = 0;
      }
      return null;
    }
    const from = this.start;
    const to = lf > from && this.data[lf - 1] === CR ? lf - 1 : lf;
    this.start = this.scanPos = lf + 1;
    if (to - from > this.opts.maxLineLength) return { type: 'error', kind: 'line-too-long' };
    return { type: 'line', line: Buffer.from(this.data.subarray(from, to)) };
  }

  /**
   * Drops the next `count` bytes unread: the chunk of a refused BDAT. Its octets follow the command
   * line at once (RFC 3030), so they must not be taken for commands.
   */
  skip(count: number): void {
    const now = Math.min(count, this.end - this.start);
    this.start = this.scanPos = this.start + now;
    this.skipping = count - now;
  }

  /** Hands over every byte not yet returned as a line, and empties the reader. */
  takeRemaining(): Buffer {
    const rest = Buffer.from(this.data.subarray(this.start, this.end));
    this.clear();
    return rest;
  }

  /** Forgets everything buffered (STARTTLS: plaintext sent before the handshake is never trusted). */
  clear(): void {
    this.start = this.end = this.scanPos = 0;
    this.discarding = this.owedError = false;
    this.skipping = 0;
  }

  private append(bytes: Buffer): void {
    if (this.end + bytes.length > this.data.length) {
      if (this.start > 0) {
        // Overlapping copy is safe: Buffer#copy is a memmove.
        this.data.copy(this.data, 0, this.start, this.end);
        this.end -= this.start;
        this.scanPos -= this.start;
        this.start = 0;
      }
      if (this.end + bytes.length > this.data.length) {
        const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.end + bytes.length));
        this.data.copy(grown, 0, 0, this.end);
        this.data = grown;
      }
    }
    bytes.copy(this.data, this.end);
    this.end += bytes.length;
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
