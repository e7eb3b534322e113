import type { Readable } from 'node:stream';
import { MailotpError } from '../core/errors.js';
import { protocolError, unavailable } from './upstream-errors.js';

export interface ResponseReaderOptions {
  /** Longest logical line (IMAP literals included) before the upstream is called broken. */
  maxLineLength?: number;
  /** Treat a trailing `{n}` as an IMAP literal whose n bytes belong to the same logical line. */
  imapLiterals?: boolean;
}

const DEFAULT_MAX_LINE = 64 * 1024;
const LITERAL_AT_END = /\{(\d{1,10})\+?\}$/;

interface Pending {
  resolve(line: string): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Reads upstream responses line by line from a socket it listens to, and gives the socket back
 * (listener removed, paused, unread bytes returned) so it can be spliced without losing a byte.
 */
export class ResponseReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** Where the search for the end of the current logical line resumes (past any literal). */
  private scanFrom = 0;
  private pending: Pending | null = null;
  private failure: MailotpError | null = null;
  private attached = true;
  private readonly maxLineLength: number;
  private readonly imapLiterals: boolean;

  private readonly onData = (chunk: Buffer) => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.settle();
  };
  private readonly onEnd = () => this.fail(unavailable('upstream closed the connection'));
  private readonly onError = (err: Error) => this.fail(unavailable(`upstream connection error: ${err.message}`, err));

  constructor(
    private readonly socket: Readable,
    opts: ResponseReaderOptions = {},
  ) {
    this.maxLineLength = opts.maxLineLength ?? DEFAULT_MAX_LINE;
    this.imapLiterals = opts.imapLiterals ?? true;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  /** The next logical line without its line ending; rejects on timeout, close or a protocol error. */
  readLine(timeoutMs: number): Promise<string> {
    if (this.pending) return Promise.reject(new Error('ResponseReader: readLine() called while another read is pending'));
    let line: string | null;
    try {
      line = this.extract();
    } catch (err) {
      this.fail(err as Error);
      return Promise.reject(this.failure ?? err);
    }
    if (line !== null) return Promise.resolve(line);
    if (this.failure) return Promise.reject(this.failure);
    if (!this.attached) return Promise.reject(new Error('ResponseReader: detached'));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        reject(unavailable(`no answer from upstream within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
    });
  }

  /**
   * Stops listening and pauses the socket. Bytes the socket receives afterwards stay in it for
   * whoever reads next; bytes already read are kept for takeBuffered().
   */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    // Pause first: a flowing socket without a 'data' listener would drop whatever arrives.
    this.socket.pause();
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('close', this.onEnd);
    this.socket.removeListener('error', this.onError);
    if (this.pending) {
      const { reject, timer } = this.pending;
      clearTimeout(timer);
      this.pending = null;
      reject(new Error('ResponseReader: detached while a read was pending'));
    }
  }

  /** Detaches, then returns the bytes read past the last line handed out. */
  takeBuffered(): Buffer {
    this.detach();
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    this.scanFrom = 0;
    return rest;
  }

  /** Bytes read but not yet handed out as a line. */
  get bufferedLength(): number {
    return this.buffer.length;
  }

  private settle(): void {
    let line: string | null;
    try {
      if (!this.pending) {
        // Nobody is reading yet; lines stay in the buffer (takeBuffered() must see them), but a
        // flood without a line end is cut off now.
        this.findLineEnd();
        return;
      }
      line = this.extract();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (line === null) return;
    const { resolve, timer } = this.pending;
    clearTimeout(timer);
    this.pending = null;
    resolve(line);
  }

  private fail(err: Error): void {
    this.failure ??= err instanceof MailotpError ? err : unavailable(err.message, err);
    if (this.pending) {
      const { reject, timer } = this.pending;
      clearTimeout(timer);
      this.pending = null;
      reject(this.failure);
    }
  }

  /**
   * The end of the current logical line as [contentEnd, nextLineStart], or null when more bytes are
   * needed. Throws when the line grows past the cap.
   */
  private findLineEnd(): [number, number] | null {
    for (;;) {
      const lf = this.buffer.indexOf(0x0a, this.scanFrom);
      if (lf < 0) {
        if (this.buffer.length > this.maxLineLength + 2) throw tooLong(this.maxLineLength);
        return null;
      }
      const contentEnd = lf > 0 && this.buffer[lf - 1] === 0x0d ? lf - 1 : lf;
      if (contentEnd > this.maxLineLength) throw tooLong(this.maxLineLength);
      if (this.imapLiterals) {
        // A literal marker is short; only the segment's tail needs looking at.
        const tail = this.buffer.toString('latin1', Math.max(this.scanFrom, contentEnd - 16), contentEnd);
        const m = LITERAL_AT_END.exec(tail);
        if (m) {
          const size = Number(m[1]);
          const literalEnd = lf + 1 + size;
          if (literalEnd > this.maxLineLength + 2) throw tooLong(this.maxLineLength);
          if (this.buffer.length < literalEnd) return null;
          this.scanFrom = literalEnd;
          continue;
        }
      }
      return [contentEnd, lf + 1];
    }
  }

  private extract(): string | null {
    // After a protocol error the buffer is garbage; after a close, complete lines still count.
    if (this.failure?.code === 'MAILOTP_ERR_UPSTREAM_PROTOCOL') return null;
    const end = this.findLineEnd();
    if (end === null) return null;
    const line = this.buffer.toString('utf8', 0, end[0]);
    this.buffer = this.buffer.subarray(end[1]);
    this.scanFrom = 0;
    return line;
  }
}

function tooLong(max: number): MailotpError {
  return protocolError(`upstream sent a line longer than ${max} bytes`);
}
