const LF = 0x0a;
const CR = 0x0d;

/**
 * The bytes a line-based command reader (POP3, SMTP) holds: appended as they arrive, read a line at
 * a time from the front, the rest handed over as it came. Compacts before it grows, so a client that
 * pipelines within limits keeps one buffer.
 */
export class LineBuffer {
  private data: Buffer;
  private start = 0;
  private end = 0;
  /** Where the search for the next LF resumes. */
  private scanPos = 0;

  constructor(initialSize: number) {
    this.data = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes held and not yet read. */
  get buffered(): number {
    return this.end - this.start;
  }

  append(bytes: Buffer): void {
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

  /**
   * The next line without its line end (CRLF, or a bare LF, as most servers take it: only the CR
   * right before the LF is dropped), or null when no LF has come yet. A line longer than maxLength
   * is read past and answered 'too-long'.
   */
  nextLine(maxLength: number): Buffer | 'too-long' | null {
    const lf = this.data.subarray(0, this.end).indexOf(LF, this.scanPos);
    if (lf < 0) {
      this.scanPos = this.end;
      return null;
    }
    const from = this.start;
    const to = lf > from && this.data[lf - 1] === CR ? lf - 1 : lf;
    this.start = this.scanPos = lf + 1;
    return to - from > maxLength ? 'too-long' : Buffer.from(this.data.subarray(from, to));
  }

  /** Drops up to count bytes from the front; returns how many it dropped. */
  skip(count: number): number {
    const now = Math.min(count, this.end - this.start);
    this.start = this.scanPos = this.start + now;
    return now;
  }

  /** Hands over every byte not yet read, and empties the buffer. */
  take(): Buffer {
    const rest = Buffer.from(this.data.subarray(this.start, this.end));
    this.clear();
    return rest;
  }

  clear(): void {
    this.start = this.end = this.scanPos = 0;
  }
}
