import type { Duplex } from 'node:stream';
import type { Logger } from '../log/logger.js';

export interface SpliceOptions {
  /** Bytes mailotp read from the client past the login command; they reach the upstream first. */
  clientBuffered?: Buffer;
  /** Bytes mailotp read from the upstream past its login answer; they reach the client first. */
  upstreamBuffered?: Buffer;
  logger?: Logger;
  /** Both sides are destroyed after this long without a byte in either direction. */
  idleTimeoutMs?: number;
  /**
   * Once one side has ended or failed, how long the other may stay silent before both are
   * destroyed. Data still flowing keeps extending it.
   */
  graceMs?: number;
}

export interface SpliceResult {
  /** Bytes forwarded client -> upstream, clientBuffered included. */
  bytesFromClient: number;
  /** Bytes forwarded upstream -> client, upstreamBuffered included. */
  bytesFromUpstream: number;
}

const DEFAULT_GRACE_MS = 2_000;

/** Where a spliced socket's listeners find their splice: one property instead of a closure each. */
const kSplice = Symbol('mailotp.splice');
type Side = Duplex & { [kSplice]?: Splice };
/** Splice.seen: bit 0 client ended, 1 upstream ended, 2 client closed, 3 upstream closed. */
const CLOSE_SHIFT = 2;
const BOTH_CLOSED = 3 << CLOSE_SHIFT;

/**
 * One splice's state. Its listeners below are module functions shared by every splice (`this` is
 * the emitting socket), and its timers take it as an argument: a spliced session costs this one
 * object and a promise, not a score of closures and their contexts (at 10,000 idle sessions that
 * was 1.5 KiB each, docs/benchmarks.md).
 */
class Splice {
  readonly result: SpliceResult = { bytesFromClient: 0, bytesFromUpstream: 0 };
  lastActivity = Date.now();
  shuttingDown = false;
  /** Which of the four one-time events were seen (see firstTime). */
  private seen = 0;
  idleTimer: NodeJS.Timeout | undefined;
  graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: Duplex,
    readonly upstream: Duplex,
    readonly log: Logger | undefined,
    readonly graceMs: number,
    readonly idleMs: number,
    readonly resolve: (r: SpliceResult) => void,
  ) {}

  other(side: Duplex): Duplex {
    return side === this.client ? this.upstream : this.client;
  }

  /** True the first time `side` ends (or closes); later ones are repeats to ignore. */
  firstTime(side: Duplex, what: 'end' | 'close'): boolean {
    const bit = (side === this.client ? 1 : 2) << (what === 'close' ? CLOSE_SHIFT : 0);
    if (this.seen & bit) return false;
    this.seen |= bit;
    return true;
  }

  name(side: Duplex): 'client' | 'upstream' {
    return side === this.client ? 'client' : 'upstream';
  }

  destroyBoth(why: string): void {
    this.log?.debug({ why }, 'splice: destroying both sides');
    this.client.destroy();
    this.upstream.destroy();
  }

  armGrace(): void {
    this.graceTimer = setTimeout(graceCheck, Math.max(this.lastActivity + this.graceMs - Date.now(), 1), this);
  }

  armIdle(): void {
    this.idleTimer = setTimeout(idleCheck, Math.max(this.lastActivity + this.idleMs - Date.now(), 1), this);
  }

  shutdown(why: string): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.log?.debug({ why }, 'splice: one side is done');
    // The fresh start of the grace counts from the end, not from the last byte before it.
    this.lastActivity = Date.now();
    this.armGrace();
  }

  /** A side is closed: nothing more can be forwarded from it. */
  sideClosed(side: Duplex): void {
    if (!this.firstTime(side, 'close')) return;
    const to = this.other(side);
    endOther(to);
    // Keep reading so the other side's FIN is seen at once.
    if (!to.destroyed) to.resume();
    this.shutdown(`${this.name(side)} closed`);
    if ((this.seen & BOTH_CLOSED) !== BOTH_CLOSED) return;
    clearTimeout(this.idleTimer);
    clearTimeout(this.graceTimer);
    unwire(this.client as Side);
    unwire(this.upstream as Side);
    this.log?.debug(this.result, 'splice finished');
    this.resolve(this.result);
  }
}

function endOther(s: Duplex): void {
  if (!s.destroyed && !s.writableEnded) s.end();
}

function graceCheck(sp: Splice): void {
  if (Date.now() - sp.lastActivity >= sp.graceMs) sp.destroyBoth('grace expired');
  else sp.armGrace();
}

function idleCheck(sp: Splice): void {
  if (Date.now() - sp.lastActivity >= sp.idleMs) sp.destroyBoth('idle timeout');
  else sp.armIdle();
}

function onData(this: Side, chunk: Buffer): void {
  const sp = this[kSplice]!;
  sp.lastActivity = Date.now();
  const to = sp.other(this);
  if (to.destroyed || to.writableEnded) return;
  if (this === sp.client) sp.result.bytesFromClient += chunk.length;
  else sp.result.bytesFromUpstream += chunk.length;
  // Backpressure: stop reading until the other side has flushed.
  if (!to.write(chunk)) this.pause();
}

/** `this` has flushed: the other side may be read again. */
function onDrain(this: Side): void {
  const sp = this[kSplice]!;
  sp.other(this).resume();
}

function onError(this: Side, err: NodeJS.ErrnoException): void {
  // Stays after unwire(), so that a late error is never uncaught.
  const sp = this[kSplice];
  if (!sp) return;
  sp.log?.debug({ side: sp.name(this), code: err.code, err: err.message }, 'splice: stream error');
  endOther(sp.other(this));
  sp.shutdown(`${sp.name(this)} error`);
}

function onEnd(this: Side): void {
  const sp = this[kSplice]!;
  if (!sp.firstTime(this, 'end')) return;
  // Half-close: the other side learns that no more bytes come this way.
  endOther(sp.other(this));
  sp.shutdown(`${sp.name(this)} ended`);
}

function onClose(this: Side): void {
  this[kSplice]!.sideClosed(this);
}

function wire(sp: Splice, side: Side): void {
  side[kSplice] = sp;
  side.on('data', onData);
  side.on('drain', onDrain);
  side.on('error', onError);
  side.on('end', onEnd);
  side.on('close', onClose);
  // A side that was gone before we started never emits 'close' again.
  if (side.closed) process.nextTick(closedAlready, sp, side);
}

/**
 * Both sides are closed: the sockets let go of the splice. A closed TLS socket is not freed by the
 * young-generation collector (only a full collection frees it, docs/benchmarks.md), and whatever
 * it still references (this splice, the other socket, the session's promise) is copied and
 * promoted with it at every scavenge until then.
 */
function unwire(side: Side): void {
  side[kSplice] = undefined;
  side.removeListener('data', onData);
  side.removeListener('drain', onDrain);
  side.removeListener('end', onEnd);
  side.removeListener('close', onClose);
}

function closedAlready(sp: Splice, side: Duplex): void {
  sp.sideClosed(side);
}

/**
 * Joins two streams byte for byte with backpressure until both are closed. An end, error or close
 * on either side half-closes the other; a side that then stays silent is destroyed after a grace.
 * Never rejects: resets and aborts are the normal way mail sessions end.
 *
 * Not stream.pipe(): a spliced session lasts hours and mailotp holds thousands, and pipe() adds
 * nine closures and listeners per direction. Here one 'data' listener per direction writes, counts
 * and pauses on backpressure, and the other side's 'drain' resumes it; every listener is shared.
 */
export function splice(client: Duplex, upstream: Duplex, opts: SpliceOptions = {}): Promise<SpliceResult> {
  // Only debug lines: a per-session logger is kept for the session's hours only when they are on.
  const log = opts.logger?.isLevelEnabled('debug') ? opts.logger : undefined;
  let sp!: Splice;
  const done = new Promise<SpliceResult>((resolve) => {
    sp = new Splice(client, upstream, log, opts.graceMs ?? DEFAULT_GRACE_MS, opts.idleTimeoutMs ?? 0, resolve);
  });
  // Still first on the wire: neither side is read before the resume() calls below.
  const { clientBuffered, upstreamBuffered } = opts;
  if (clientBuffered && clientBuffered.length > 0 && !upstream.writableEnded) {
    sp.result.bytesFromClient += clientBuffered.length;
    upstream.write(clientBuffered);
  }
  if (upstreamBuffered && upstreamBuffered.length > 0 && !client.writableEnded) {
    sp.result.bytesFromUpstream += upstreamBuffered.length;
    client.write(upstreamBuffered);
  }
  wire(sp, client);
  wire(sp, upstream);
  // Paused sockets (handed over by the session) stay paused when a 'data' listener is added.
  client.resume();
  upstream.resume();
  if (sp.idleMs > 0) sp.armIdle();
  return done;
}
