import type net from 'node:net';
import tls from 'node:tls';
import type { Scheduler, Timer } from '../../core/clock.js';
import type { Logger } from '../../log/logger.js';

export interface ConnectionHandlers {
  data(chunk: Buffer): void;
  /** The client closed its sending side. */
  end(): void;
  /** The connection is gone for good (every socket destroyed). */
  closed(): void;
}

/** Holds nothing, so a spliced socket does not keep the pre-login session alive. */
const ignoreError = (): void => undefined;

/** How long a closing socket may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * The client's side of the wire: the raw socket, then the TLS socket on top of it after
 * STARTTLS. Socket errors (ECONNRESET, EPIPE, handshake failures) are logged, never thrown.
 */
export class ClientConnection {
  private current: net.Socket;
  private readonly sockets = new Set<net.Socket>();
  private graceTimer: Timer | undefined;
  private gone = false;

  constructor(
    socket: net.Socket,
    private readonly log: Logger,
    private readonly on: ConnectionHandlers,
    private readonly scheduler: Scheduler,
  ) {
    this.current = socket;
  }

  get socket(): net.Socket {
    return this.current;
  }

  start(): void {
    this.attach(this.current);
    if (this.current.destroyed) this.onClose();
  }

  send(line: string): void {
    const s = this.current;
    if (s.destroyed || !s.writable) return;
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line }, 'client >');
    s.write(`${line}\r\n`);
  }

  /** Flushes what was written, then closes; a client that never reads is cut off after a grace. */
  end(): void {
    if (this.graceTimer || this.gone) return;
    this.current.end();
    this.graceTimer = this.scheduler.setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
  }

  destroy(): void {
    for (const s of this.sockets) s.destroy();
  }

  pause(): void {
    this.current.pause();
  }

  resume(): void {
    this.current.resume();
  }

  /**
   * Starts a server-side TLS handshake on the current socket. Whatever arrives in clear from
   * now on feeds the handshake, never the command reader.
   */
  upgrade(options: tls.TLSSocketOptions, onSecure: (socket: tls.TLSSocket) => void): void {
    const raw = this.current;
    raw.removeListener('data', this.onData);
    raw.removeListener('end', this.onEnd);
    let secured: tls.TLSSocket;
    try {
      secured = new tls.TLSSocket(raw, { ...options, isServer: true });
    } catch (err) {
      this.log.warn({ err }, 'client TLS setup failed');
      raw.destroy();
      return;
    }
    this.current = secured;
    this.attach(secured);
    secured.once('secure', () => onSecure(secured));
  }

  /**
   * Gives the socket away (to the splice): paused first, because a flowing socket left without
   * a 'data' listener drops bytes. An error listener stays so a late error cannot crash, but
   * not ours: the sockets must not keep this connection and its session alive for the hours a
   * spliced session lasts.
   */
  handOver(): net.Socket {
    this.current.pause();
    for (const s of this.sockets) {
      s.removeListener('data', this.onData);
      s.removeListener('end', this.onEnd);
      s.removeListener('close', this.onClose);
      s.removeListener('error', this.onError);
      s.on('error', ignoreError);
    }
    this.sockets.clear();
    this.clearGrace();
    return this.current;
  }

  private attach(s: net.Socket): void {
    this.sockets.add(s);
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onClose);
  }

  private clearGrace(): void {
    this.graceTimer?.clear();
    this.graceTimer = undefined;
  }

  private readonly onData = (chunk: Buffer): void => this.on.data(chunk);
  private readonly onEnd = (): void => this.on.end();

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.log.debug({ code: err.code, err: err.message }, 'client socket error');
  };

  private readonly onClose = (): void => {
    if (this.gone) return;
    this.gone = true;
    this.clearGrace();
    this.destroy();
    this.on.closed();
  };
}
