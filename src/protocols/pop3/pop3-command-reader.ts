/**
 * Incremental, bounded reader of POP3 client lines (RFC 1939, RFC 2449, RFC 5034). POP3 has no
 * literals: every command, and every SASL response, is one line.
 *
 * Pull-based like the IMAP reader: the session pushes every byte but only pulls lines while it is
 * willing to act on them, so commands pipelined behind PASS/AUTH stay untouched for
 * `takeRemaining()` and reach the upstream byte for byte.
 */

export interface Pop3Command {
  /** Upper-cased keyword (latin1); may hold anything but SP, the session decides what it knows. */
  keyword: string;
  /** Everything after the first SP, unchanged (USER names and PASS passwords may contain spaces). */
  rest: Buffer | null;
  /** The line without its line end. */
  line: Buffer;
}

export type Pop3ReadResult = { type: 'line'; command: Pop3Command } | { type: 'error'; kind: 'line-too-long' };

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;

/** Splits a line into keyword and arguments. */
export function parsePop3Line(line: Buffer): Pop3Command {
  const sp = line.indexOf(SP);
  const keyword = line.toString('latin1', 0, sp < 0 ? line.length : sp).toUpperCase();
  return { keyword, rest: sp < 0 ? null : Buffer.from(line.subarray(sp + 1)), line };
}

export class Pop3CommandReader {
  private data = Buffer.allocUnsafe(512);
  private start = 0;
  private end = 0;
  /** Where the search for the next LF resumes. */
  private scanPos = 0;
  private dead = false;

  /** `maxLineLength`: longest line without its CRLF (limits.maxLineLength). */
  constructor(private readonly maxLineLength: number) {}

  /** Bytes held and not yet returned as a line. */
  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Buffer): void {
    if (this.dead || chunk.length === 0) return;
    this.reserve(chunk.length);
    chunk.copy(this.data, this.end);
    this.end += chunk.length;
  }

  /**
   * The next line, or null when more bytes are needed. A bare LF ends a line too (as most servers
   * take it); only the CR right before the LF is dropped. After 'line-too-long' the reader is dead.
   */
  next(): Pop3ReadResult | null {
    if (this.dead) return null;
    const lf = this.data.subarray(0, this.end).indexOf(LF, this.scanPos);
    if (lf < 0) {
      this.scanPos = this.end;
      // +1: the CR of a line of exactly the maximum may be in while its LF is not.
      if (this.end - this.start > this.maxLineLength + 1) return this.fail();
      return null;
    }
    const to = lf > this.start && this.data[lf - 1] === CR ? lf - 1 : lf;
    if (to - this.start > this.maxLineLength) return this.fail();
    const line = Buffer.from(this.data.subarray(this.start, to));
    this.start = this.scanPos = lf + 1;
    return { type: 'line', command: parsePop3Line(line) };
  }

  /** Hands over every byte not yet returned as a line, and empties the reader. */
  takeRemaining(): Buffer {
    const rest = Buffer.from(this.data.subarray(this.start, this.end));
    this.clear();
    return rest;
  }

  /** Forgets everything buffered (STLS: plaintext sent before the handshake is never trusted). */
  clear(): void {
    this.start = this.end = this.scanPos = 0;
  }

  private fail(): Pop3ReadResult {
    this.dead = true;
    this.clear();
    this.data = Buffer.alloc(0);
    return { type: 'error', kind: 'line-too-long' };
  }

  private reserve(extra: number): void {
    if (this.end + extra <= this.data.length) return;
    if (this.start > 0) {
      this.data.copy(this.data, 0, this.start, this.end);
      this.end -= this.start;
      this.scanPos -= this.start;
      this.start = 0;
    }
    if (this.end + extra <= this.data.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.end + extra));
    this.data.copy(grown, 0, 0, this.end);
    this.data = grown;
  }
}

const LOG_LIMIT = 200;

/** RFC 1939, 2449, 2595, 5034, 6856 and XCLIENT; any other word may be a password sent out of turn. */
const KNOWN_KEYWORDS = new Set('USER PASS APOP AUTH CAPA STLS QUIT NOOP RSET STAT LIST RETR DELE TOP UIDL UTF8 LANG XCLIENT'.split(' '));

/** The keyword when it is a known one, for logs. */
export function loggableKeyword(keyword: string): string {
  return KNOWN_KEYWORDS.has(keyword) ? keyword : '(unknown)';
}

/**
 * The line as loggable text: the keyword only, plus USER's name and AUTH's mechanism; never a secret.
 * A line that does not start with a known keyword is shown by its length only: a client out of step
 * may send its base64 SASL response, or its password, as a line of its own.
 */
export function maskForLog(cmd: Pop3Command, inSasl = false): string {
  if (inSasl) return '***';
  if (!KNOWN_KEYWORDS.has(cmd.keyword)) return `(unknown command, ${cmd.line.length} bytes)`;
  const printable = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const keyword = printable(cmd.keyword);
  if (cmd.rest === null) return keyword;
  let shown = '***';
  if (cmd.keyword === 'USER') shown = printable(cmd.rest.toString('utf8'));
  else if (cmd.keyword === 'AUTH') shown = `${printable(cmd.rest.toString('latin1').split(' ', 1)[0] ?? '')}${cmd.rest.includes(SP) ? ' ***' : ''}`;
  const text = `${keyword} ${shown}`;
  return text.length > LOG_LIMIT ? `${text.slice(0, LOG_LIMIT)}...` : text;
}
