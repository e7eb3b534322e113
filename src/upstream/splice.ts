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
 *
 * Not stream.pipe(): a spliced session lasts hours and mailotp holds thousands, and pipe() adds
 * nine closures and listeners per direction next to the ones needed here anyway. One 'data'
 * listener per direction writes, counts and pauses on backpressure; one 'drain' listener resumes.
 */
export function splice(client: Duplex, upstream: Duplex, opts: SpliceOptions = {}): Promise<SpliceResult> {
  // Only debug lines below: a per-session logger is kept for the session's hours only when they are on.
  const log = opts.logger?.isLevelEnabled('debug') ? opts.logger : undefined;
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const idleMs = opts.idleTimeoutMs ?? 0;
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

    const endOther = (s: Duplex) => {
      if (!s.destroyed && !s.writableEnded) s.end();
    };

    const wire = (from: Duplex, to: Duplex, name: 'client' | 'upstream') => {
      const count = name === 'client' ? 'bytesFromClient' : 'bytesFromUpstream';
      let isClosed = false;
      from.on('data', (chunk: Buffer) => {
        lastActivity = Date.now();
        if (to.destroyed || to.writableEnded) return;
        result[count] += chunk.length;
        // Backpressure: stop reading until the other side has flushed.
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => from.resume());
      from.on('error', (err: NodeJS.ErrnoException) => {
        log?.debug({ side: name, code: err.code, err: err.message }, 'splice: stream error');
        endOther(to);
        shutdown(`${name} error`);
      });
      from.once('end', () => {
        // Half-close: the other side learns that no more bytes come this way.
        endOther(to);
        shutdown(`${name} ended`);
      });
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
      // A side that was gone before we started never emits 'close' again.
      if (from.closed) process.nextTick(onClose);
    };

    // Still first on the wire: neither side is read before the resume() calls below.
    if (opts.clientBuffered && opts.clientBuffered.length > 0 && !upstream.writableEnded) {
      result.bytesFromClient += opts.clientBuffered.length;
      upstream.write(opts.clientBuffered);
    }
    if (opts.upstreamBuffered && opts.upstreamBuffered.length > 0 && !client.writableEnded) {
      result.bytesFromUpstream += opts.upstreamBuffered.length;
      client.write(opts.upstreamBuffered);
    }

    wire(client, upstream, 'client');
    wire(upstream, client, 'upstream');
    // Paused sockets (handed over by the session) stay paused when a 'data' listener is added.
    client.resume();
    upstream.resume();

    if (idleMs > 0) {
      const armIdle = () => {
        const wait = lastActivity + idleMs - Date.now();
        idleTimer = setTimeout(() => (Date.now() - lastActivity >= idleMs ? destroyBoth('idle timeout') : armIdle()), Math.max(wait, 1));
      };
      armIdle();
    }
  });
}
