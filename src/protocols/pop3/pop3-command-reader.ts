/**
 * Incremental, bounded reader of POP3 client lines (RFC 1939, RFC 2449, RFC 5034). POP3 has no
 * literals: every command, and every SASL response, is one line.
 *
 * Pull-based like the IMAP reader: the session pushes every byte but only pulls lines while it is
 * willing to act on them, so commands pipelined behind PASS/AUTH stay untouched for
 * `takeRemaining()` and reach the upstream byte for byte.
 */

import { LineBuffer } from '../shared/line-buffer.js';

export interface Pop3Command {
  /** Upper-cased keyword (latin1); may hold anything but SP, the session decides what it knows. */
  keyword: string;
  /** Everything after the first SP, unchanged (USER names and PASS passwords may contain spaces). */
  rest: Buffer | null;
  /** The line without its line end. */
  line: Buffer;
}

export type Pop3ReadResult = { type: 'line'; command: Pop3Command } | { type: 'error'; kind: 'line-too-long' };

const SP = 0x20;

/** Splits a line into keyword and arguments. */
export function parsePop3Line(line: Buffer): Pop3Command {
  const sp = line.indexOf(SP);
  const keyword = line.toString('latin1', 0, sp < 0 ? line.length : sp).toUpperCase();
  return { keyword, rest: sp < 0 ? null : Buffer.from(line.subarray(sp + 1)), line };
}

export class Pop3CommandReader {
  private buffer = new LineBuffer(512);
  private dead = false;

  /** `maxLineLength`: longest line without its CRLF (limits.maxLineLength). */
  constructor(private readonly maxLineLength: number) {}

  /** Bytes held and not yet returned as a line. */
  get buffered(): number {
    return this.buffer.buffered;
  }

  push(chunk: Buffer): void {
    if (this.dead || chunk.length === 0) return;
    this.buffer.append(chunk);
  }

  /**
   * The next line, or null when more bytes are needed. A bare LF ends a line too (as most servers
   * take it); only the CR right before the LF is dropped. After 'line-too-long' the reader is dead.
   */
  next(): Pop3ReadResult | null {
    if (this.dead) return null;
    const line = this.buffer.nextLine(this.maxLineLength);
    // +1: the CR of a line of exactly the maximum may be in while its LF is not.
    if (line === null) return this.buffer.buffered > this.maxLineLength + 1 ? this.fail() : null;
    if (line === 'too-long') return this.fail();
    return { type: 'line', command: parsePop3Line(line) };
  }

  /** Hands over every byte not yet returned as a line, and empties the reader. */
  takeRemaining(): Buffer {
    return this.buffer.take();
  }

  /** Forgets everything buffered (STLS: plaintext sent before the handshake is never trusted). */
  clear(): void {
    this.buffer.clear();
  }

  private fail(): Pop3ReadResult {
    this.dead = true;
    // Nothing more is read: the memory goes with the buffer.
    this.buffer = new LineBuffer(0);
    return { type: 'error', kind: 'line-too-long' };
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
