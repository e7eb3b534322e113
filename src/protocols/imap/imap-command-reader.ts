/**
 * Incremental, bounded reader of IMAP client commands (RFC 3501 grammar, RFC 7888 literals).
 *
 * Pull-based on purpose: the session pushes every byte it receives but only pulls commands
 * while it is willing to act on them. Whatever it never pulled (commands pipelined after
 * LOGIN) stays untouched for `takeRemaining()`, and no "+ Ready" is ever sent for them.
 */

export type ImapArg =
  | { type: 'atom'; value: string }
  | { type: 'quoted'; value: Buffer }
  | { type: 'literal'; value: Buffer; sync: boolean }
  | { type: 'list'; items: ImapArg[] };

export interface ImapCommand {
  tag: string;
  /** Upper-cased. */
  name: string;
  args: ImapArg[];
  /** Every byte of the command, literals and line ends included. */
  raw: Buffer;
}

/** One client line read in continuation mode (an AUTHENTICATE response). */
export interface ImapContinuationLine {
  continuation: true;
  /** The line without its CRLF. */
  raw: Buffer;
}

export type ImapReadError =
  /** A line (or a whole command) past the limits; the session answers and closes. */
  | { kind: 'line-too-long' }
  /** `fatal` for a non-synchronising literal: its octets are already on their way (RFC 7888). */
  | { kind: 'literal-too-large'; tag: string; fatal: boolean }
  /** Broken syntax; the reader already skipped to the next line. */
  | { kind: 'syntax'; tag?: string; message: string };

export type ImapReadResult = { type: 'command'; command: ImapCommand } | { type: 'error'; error: ImapReadError };
export type ImapLineResult = { type: 'line'; line: ImapContinuationLine } | { type: 'error'; error: ImapReadError };

export interface ImapReaderOptions {
  maxLineLength: number;
  maxLiteralSize: number;
  /** A synchronising literal was accepted: the client waits for "+ Ready for literal data". */
  onContinuationNeeded?: (tag: string) => void;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const MAX_LITERAL_NUMBER = 0xffffffff;

interface PartialCommand {
  tag?: string;
  name?: string;
  /** stack[0] holds the top-level arguments, deeper entries the open parenthesised lists. */
  stack: ImapArg[][];
  needSeparator: boolean;
}

type SegmentResult = { literal?: { size: number; sync: boolean } } | { error: string };

function isTagChar(c: number): boolean {
  // ASTRING-CHAR minus "+": no CTL, SP, 8-bit, atom-specials other than "]".
  return c > 0x20 && c < 0x7f && c !== LPAREN && c !== RPAREN && c !== LBRACE && c !== 0x25 && c !== 0x2a && c !== DQUOTE && c !== BACKSLASH && c !== 0x2b;
}

function isAtomChar(c: number): boolean {
  // Lenient on purpose ("]", "%", "*", "\", 8-bit): the delimiters and CTLs are what matter here.
  return c > 0x20 && c !== 0x7f && c !== LPAREN && c !== RPAREN && c !== LBRACE && c !== DQUOTE;
}

function top(p: PartialCommand): ImapArg[] {
  const list = p.stack[p.stack.length - 1];
  if (!list) throw new Error('argument stack is empty');
  return list;
}

/** Parses one line segment (the text before CRLF, or between two literals) into `p`. */
function parseSegment(b: Buffer, from: number, to: number, p: PartialCommand): SegmentResult {
  let i = from;
  if (p.tag === undefined) {
    while (i < to && isTagChar(b[i] ?? 0)) i++;
    if (i === from || (i < to && b[i] !== SP)) return { error: 'Missing or invalid tag' };
    p.tag = b.toString('latin1', from, i);
    if (i >= to) return { error: 'Missing command' };
    i++;
  }
  if (p.name === undefined) {
    const start = i;
    while (i < to && isAtomChar(b[i] ?? 0)) i++;
    if (i === start || (i < to && b[i] !== SP)) return { error: 'Missing or invalid command name' };
    p.name = b.toString('latin1', start, i).toUpperCase();
    p.needSeparator = true;
  }
  for (;;) {
    const afterArg = i;
    while (i < to && b[i] === SP) i++;
    if (i >= to) return {};
    const c = b[i] ?? 0;
    if (c === RPAREN) {
      if (p.stack.length < 2) return { error: 'Unexpected ")"' };
      p.stack.pop();
      p.needSeparator = true;
      i++;
      continue;
    }
    if (p.needSeparator && i === afterArg) return { error: 'Missing space between arguments' };
    if (c === LPAREN) {
      const items: ImapArg[] = [];
      top(p).push({ type: 'list', items });
      p.stack.push(items);
      p.needSeparator = false;
      i++;
      continue;
    }
    p.needSeparator = true;
    if (c === DQUOTE) {
      const r = parseQuoted(b, i, to);
      if ('error' in r) return r;
      top(p).push({ type: 'quoted', value: r.value });
      i = r.next;
    } else if (c === LBRACE) {
      return parseLiteralSpec(b, i, to);
    } else {
      const start = i;
      while (i < to && isAtomChar(b[i] ?? 0)) i++;
      if (i === start || (i < to && b[i] !== SP && b[i] !== RPAREN && b[i] !== LPAREN)) return { error: 'Invalid character in atom' };
      top(p).push({ type: 'atom', value: b.toString('utf8', start, i) });
    }
  }
}

function parseQuoted(b: Buffer, open: number, to: number): { value: Buffer; next: number } | { error: string } {
  const out = Buffer.allocUnsafe(to - open);
  let n = 0;
  for (let i = open + 1; i < to; i++) {
    const c = b[i] ?? 0;
    if (c === DQUOTE) return { value: Buffer.from(out.subarray(0, n)), next: i + 1 };
    if (c === 0 || c === CR || c === LF) return { error: 'Invalid character in quoted string' };
    if (c === BACKSLASH) {
      const e = b[i + 1];
      if (e !== DQUOTE && e !== BACKSLASH) return { error: 'Invalid escape in quoted string' };
      out[n++] = e;
      i++;
      continue;
    }
    out[n++] = c;
  }
  return { error: 'Unterminated quoted string' };
}

function parseLiteralSpec(b: Buffer, open: number, to: number): SegmentResult {
  let i = open + 1;
  const digitsStart = i;
  while (i < to && (b[i] ?? 0) >= 0x30 && (b[i] ?? 0) <= 0x39) i++;
  const digits = i - digitsStart;
  let sync = true;
  // "{n-}" is taken like "{n+}": a client that writes it is not waiting for "+".
  if (b[i] === 0x2b || b[i] === 0x2d) {
    sync = false;
    i++;
  }
  if (digits === 0 || digits > 10 || b[i] !== RBRACE) return { error: 'Invalid literal size' };
  const size = Number(b.toString('latin1', digitsStart, digitsStart + digits));
  if (size > MAX_LITERAL_NUMBER) return { error: 'Invalid literal size' };
  if (i + 1 !== to) return { error: 'Literal must end the line' };
  return { literal: { size, sync } };
}

export class ImapCommandReader {
  private data = Buffer.allocUnsafe(1024);
  private end = 0;
  /** Offset of the first byte of the command being read. */
  private cmdStart = 0;
  /** Offset of the current line segment (or of the literal octets being awaited). */
  private segStart = 0;
  /** Where the search for the next LF resumes. */
  private scanPos = 0;
  private literal: { size: number; sync: boolean } | null = null;
  private partial: PartialCommand | null = null;
  private dead = false;
  /** LOGIN takes at most two literals; anything bigger is not a pre-login command. */
  private readonly commandBudget: number;

  constructor(private readonly opts: ImapReaderOptions) {
    this.commandBudget = opts.maxLineLength + 2 * opts.maxLiteralSize;
  }

  /** Bytes held and not yet returned as a command. */
  get buffered(): number {
    return this.end - this.cmdStart;
  }

  push(chunk: Buffer): void {
    if (this.dead || chunk.length === 0) return;
    this.reserve(chunk.length);
    chunk.copy(this.data, this.end);
    this.end += chunk.length;
  }

  /** The next complete command or error, or null when more bytes are needed. */
  next(): ImapReadResult | null {
    if (this.dead) return null;
    for (;;) {
      if (this.literal) {
        if (!this.partial) throw new Error('literal outside a command');
        const { size, sync } = this.literal;
        if (this.end - this.segStart < size) return null;
        const value = Buffer.from(this.data.subarray(this.segStart, this.segStart + size));
        top(this.partial).push({ type: 'literal', value, sync });
        this.partial.needSeparator = true;
        this.segStart = this.scanPos = this.segStart + size;
        this.literal = null;
        continue;
      }
      const line = this.scanLine();
      if (line === null) return null;
      if ('error' in line) return { type: 'error', error: line.error };
      const { from, to } = line;
      if (!this.partial) {
        if (from === to) {
          // Empty lines are ignored, as most servers do.
          this.cmdStart = this.segStart;
          continue;
        }
        this.partial = { stack: [[]], needSeparator: false };
      }
      const p = this.partial;
      const r = parseSegment(this.data, from, to, p);
      if ('error' in r) {
        this.dropCommand();
        return { type: 'error', error: { kind: 'syntax', tag: p.tag, message: r.error } };
      }
      if (r.literal) {
        const tag = p.tag ?? '*';
        const { size, sync } = r.literal;
        if (size > this.opts.maxLiteralSize || this.segStart - this.cmdStart + size > this.commandBudget) {
          if (!sync) return this.fail({ kind: 'literal-too-large', tag, fatal: true });
          // The client waits for "+", gets a tagged BAD instead and sends no octets.
          this.dropCommand();
          return { type: 'error', error: { kind: 'literal-too-large', tag, fatal: false } };
        }
        this.literal = r.literal;
        if (sync) this.opts.onContinuationNeeded?.(tag);
        continue;
      }
      if (p.stack.length > 1) {
        this.dropCommand();
        return { type: 'error', error: { kind: 'syntax', tag: p.tag, message: 'Unterminated list' } };
      }
      const command: ImapCommand = {
        tag: p.tag ?? '*',
        name: p.name ?? '',
        args: p.stack[0] ?? [],
        raw: Buffer.from(this.data.subarray(this.cmdStart, this.segStart)),
      };
      this.partial = null;
      this.cmdStart = this.segStart;
      return { type: 'command', command };
    }
  }

  /** The next single line (an AUTHENTICATE response), or null when more bytes are needed. */
  nextLine(): ImapLineResult | null {
    if (this.dead) return null;
    if (this.partial || this.literal) throw new Error('nextLine() in the middle of a command');
    const line = this.scanLine();
    if (line === null) return null;
    if ('error' in line) return { type: 'error', error: line.error };
    const raw = Buffer.from(this.data.subarray(line.from, line.to));
    this.cmdStart = this.segStart;
    return { type: 'line', line: { continuation: true, raw } };
  }

  /** Hands over every byte not yet returned as a command, and empties the reader. */
  takeRemaining(): Buffer {
    const rest = Buffer.from(this.data.subarray(this.cmdStart, this.end));
    this.clear();
    return rest;
  }

  /** Forgets everything buffered (STARTTLS: plaintext sent before the handshake is never trusted). */
  clear(): void {
    this.end = this.cmdStart = this.segStart = this.scanPos = 0;
    this.literal = null;
    this.partial = null;
  }

  /** Finds the next LF; the segment runs from segStart to before the line end. */
  private scanLine(): { from: number; to: number } | { error: ImapReadError } | null {
    const lf = this.data.subarray(0, this.end).indexOf(LF, this.scanPos);
    if (lf < 0) {
      this.scanPos = this.end;
      // +1: a CR may already be in while its LF is not.
      if (this.end - this.segStart > this.opts.maxLineLength + 1 || this.end - this.cmdStart > this.commandBudget + 2) {
        return { error: this.fail({ kind: 'line-too-long' }).error };
      }
      return null;
    }
    const from = this.segStart;
    const to = lf > from && this.data[lf - 1] === CR ? lf - 1 : lf;
    this.segStart = this.scanPos = lf + 1;
    if (to - from > this.opts.maxLineLength || this.segStart - this.cmdStart > this.commandBudget + 2) {
      return { error: this.fail({ kind: 'line-too-long' }).error };
    }
    return { from, to };
  }

  private dropCommand(): void {
    this.partial = null;
    this.literal = null;
    this.cmdStart = this.segStart;
  }

  private fail(error: ImapReadError): { type: 'error'; error: ImapReadError } {
    this.dead = true;
    this.clear();
    this.data = Buffer.alloc(0);
    return { type: 'error', error };
  }

  private reserve(extra: number): void {
    if (this.end + extra <= this.data.length) return;
    if (this.cmdStart > 0) {
      // Overlapping copy is safe: Buffer#copy is a memmove.
      this.data.copy(this.data, 0, this.cmdStart, this.end);
      const shift = this.cmdStart;
      this.end -= shift;
      this.segStart -= shift;
      this.scanPos -= shift;
      this.cmdStart = 0;
    }
    if (this.end + extra <= this.data.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.end + extra));
    this.data.copy(grown, 0, 0, this.end);
    this.data = grown;
  }
}

const SHOWN_ARGS: Record<string, 'all' | number> = { ID: 'all', LOGIN: 1, AUTHENTICATE: 1 };

/** IMAP4rev1/rev2 and common extension commands; any other word may be a password sent out of turn. */
const KNOWN_COMMANDS = new Set(
  'CAPABILITY NOOP LOGOUT STARTTLS AUTHENTICATE LOGIN ID ENABLE SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE STATUS APPEND IDLE DONE CHECK CLOSE UNSELECT EXPUNGE SEARCH FETCH STORE COPY MOVE UID COMPRESS GETQUOTA GETQUOTAROOT SETQUOTA GETACL SETACL MYRIGHTS LISTRIGHTS GETMETADATA SETMETADATA SORT THREAD'.split(' '),
);

/** The command name when it is a known one, for logs. */
export function loggableName(name: string): string {
  return KNOWN_COMMANDS.has(name) ? name : '(unknown)';
}
const LOG_LIMIT = 300;

function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function renderArg(arg: ImapArg): string {
  switch (arg.type) {
    case 'atom':
      return printable(arg.value);
    case 'quoted':
      return `"${printable(arg.value.toString('utf8'))}"`;
    case 'literal':
      return `{${arg.value.length}${arg.sync ? '' : '+'}}"${printable(arg.value.toString('utf8'))}"`;
    case 'list':
      return `(${arg.items.map(renderArg).join(' ')})`;
  }
}

/**
 * The command as loggable text. Only arguments known to be harmless are shown (ID's, LOGIN's
 * user name, AUTHENTICATE's mechanism); every other argument, and every continuation line,
 * becomes "***", and a command it does not know is shown by its length only, so neither a
 * misspelt LOGIN nor a password sent on a line of its own (a client out of step) reaches a log.
 */
export function maskForLog(item: ImapCommand | ImapContinuationLine): string {
  if ('continuation' in item) return '***';
  // "correct horse" on a line of its own reads as tag "correct", command "HORSE": show neither.
  if (!KNOWN_COMMANDS.has(item.name)) return `(unknown command, ${item.raw.length} bytes)`;
  const shown = SHOWN_ARGS[item.name] ?? 0;
  const args = item.args.map((a, i) => (shown === 'all' || i < shown ? renderArg(a) : '***'));
  const text = [printable(item.tag), printable(item.name), ...args].join(' ');
  return text.length > LOG_LIMIT ? `${text.slice(0, LOG_LIMIT)}...` : text;
}
