import type net from 'node:net';
import type tls from 'node:tls';
import type { VerifiedUpstream } from '../core/login-types.js';

const ignoreError = (): void => undefined;

/** How long a goodbye may take before the socket is destroyed. */
const GOODBYE_GRACE_MS = 2_000;

/**
 * Sends the protocol's goodbye ("m7 LOGOUT", "QUIT") and ends the socket without waiting for the
 * answer; it is destroyed after a grace.
 */
export function endPolitely(socket: net.Socket, goodbye: string): void {
  // Nothing listens any more; a reset during the goodbye must not become an uncaught 'error'.
  socket.on('error', () => undefined);
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), GOODBYE_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  if (socket.writable) socket.end(`${goodbye}\r\n`);
  // Drain the answer so the upstream's FIN is read and the socket closes on its own.
  socket.resume();
}

/**
 * A logged-in session on the upstream, held while the phone decides, then spliced or closed.
 * The protocol's subclass adds what its client adapter needs of the login reply.
 */
export class UpstreamSession implements VerifiedUpstream {
  private closed = false;
  private handedOver = false;
  private gone = false;

  constructor(
    /** Paused, no 'data' listener: ready for splice(). */
    readonly socket: net.Socket | tls.TLSSocket,
    /** Bytes the upstream sent after its login reply; they go to the client before anything else. */
    readonly buffered: Buffer,
    /** What close() sends before it lets go, without CRLF. */
    private readonly goodbye: string,
  ) {
    // While held nothing reads the socket; an upstream reset must not become an uncaught 'error'.
    socket.on('error', this.onGone);
    socket.once('close', this.onGone);
  }

  private readonly onGone = (): void => {
    this.gone = true;
  };

  /** False once the upstream connection failed or closed (as far as a paused socket can tell). */
  get alive(): boolean {
    return !this.gone && !this.socket.destroyed && !this.closed;
  }

  /**
   * Marks the session as given to the client: close() will no longer send the goodbye into what
   * is now the client's conversation. Returns what splice() needs.
   */
  handOver(): { socket: net.Socket | tls.TLSSocket; buffered: Buffer } {
    this.handedOver = true;
    // The splice listens from now on; these would keep this object (and the buffer) for the
    // whole session. A late error still finds a listener that holds nothing.
    this.socket.removeListener('error', this.onGone);
    this.socket.removeListener('close', this.onGone);
    this.socket.on('error', ignoreError);
    return { socket: this.socket, buffered: this.buffered };
  }

  /** Sends the goodbye and lets go; once only, and never after handOver(). */
  close(): void {
    if (this.closed || this.handedOver) return;
    this.closed = true;
    endPolitely(this.socket, this.goodbye);
  }
}
