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

/**
 * Joins two streams byte for byte with backpressure until both are closed. An end, error or close
 * on either side half-closes the other; a side that then stays silent is destroyed after a grace.
 * Never rejects: resets and aborts are the normal way mail sessions end.
 */
export function splice(client: Duplex, upstream: Duplex, opts: SpliceOptions = {}): Promise<SpliceResult> {
  const log = opts.logger;
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const result: SpliceResult = { bytesFromClient: 0, bytesFromUpstream: 0 };
  let lastActivity = Date.now();
  let shuttingDown = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let graceTimer: NodeJS.Timeout | undefined;

  return new Promise<SpliceResult>((resolve) => {
    let open = 2;
    const closed = () => {
      open -= 1;
      if (open > 0) return;
      clearTimeout(idleTimer);
      clearTimeout(graceTimer);
      log?.debug(result, 'splice finished');
      resolve(result);
    };

    const destroyBoth = (why: string) => {
      log?.debug({ why }, 'splice: destroying both sides');
      client.destroy();
      upstream.destroy();
    };

    const armGrace = () => {
      const wait = lastActivity + graceMs - Date.now();
      graceTimer = setTimeout(() => (Date.now() - lastActivity >= graceMs ? destroyBoth('grace expired') : armGrace()), Math.max(wait, 1));
    };

    const shutdown = (why: string) => {
      if (shuttingDown) return;
      shuttingDown = true;
      log?.debug({ why }, 'splice: one side is done');
      // The fresh start of the grace counts from the end, not from the last byte before it.
      lastActivity = Date.now();
      armGrace();
    };

    const wire = (from: Duplex, to: Duplex, name: 'client' | 'upstream') => {
      const count = name === 'client' ? 'bytesFromClient' : 'bytesFromUpstream';
      let isClosed = false;
      from.on('data', (chunk: Buffer) => {
        if (!to.destroyed) result[count] += chunk.length;
        lastActivity = Date.now();
      });
      from.on('error', (err: NodeJS.ErrnoException) => {
        log?.debug({ side: name, code: err.code, err: err.message }, 'splice: stream error');
        endOther(to);
        shutdown(`${name} error`);
      });
      from.once('end', () => shutdown(`${name} ended`));
      const onClose = () => {
        if (isClosed) return;
        isClosed = true;
        endOther(to);
        // Nothing can be forwarded any more; keep reading so the other side's FIN is seen at once.
        if (!to.destroyed) to.resume();
        shutdown(`${name} closed`);
        closed();
      };
      from.once('close', onClose);
      // pipe() ends `to` when `from` ends (half-close) and pauses `from` when `to` is full.
      from.pipe(to);
      // A side that was gone before we started never emits 'close' again.
      if (from.closed) process.nextTick(onClose);
    };

    const endOther = (s: Duplex) => {
      if (!s.destroyed && !s.writableEnded) s.end();
    };

    wire(client, upstream, 'client');
    wire(upstream, client, 'upstream');

    // Still first on the wire: pipe() only starts moving data on a later tick.
    if (opts.clientBuffered && opts.clientBuffered.length > 0 && !upstream.writableEnded) {
      result.bytesFromClient += opts.clientBuffered.length;
      upstream.write(opts.clientBuffered);
    }
    if (opts.upstreamBuffered && opts.upstreamBuffered.length > 0 && !client.writableEnded) {
      result.bytesFromUpstream += opts.upstreamBuffered.length;
      client.write(opts.upstreamBuffered);
    }

    if (opts.idleTimeoutMs !== undefined && opts.idleTimeoutMs > 0) {
      const idle = opts.idleTimeoutMs;
      const armIdle = () => {
        const wait = lastActivity + idle - Date.now();
        idleTimer = setTimeout(() => (Date.now() - lastActivity >= idle ? destroyBoth('idle timeout') : armIdle()), Math.max(wait, 1));
      };
      armIdle();
    }
  });
}
