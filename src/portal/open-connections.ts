import type http from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';

/**
 * The portal's connections, and which of them carry a request right now. At shutdown the others
 * are closed: Node's close() drops only connections that have finished a request, so one that a
 * browser opened ahead of need (a preconnect) and never used, or one whose TLS handshake ended
 * after close(), would hold the listener's close until the browser lets go, which can take minutes.
 */
export class OpenConnections {
  private readonly all = new Set<Socket>();
  /** Requests in progress per connection (pipelined requests count each). */
  private readonly busy = new Map<Socket, number>();

  watch(server: http.Server | https.Server, secure: boolean): void {
    server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.all.add(socket);
      socket.once('close', () => {
        this.all.delete(socket);
        this.busy.delete(socket);
      });
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const socket = req.socket;
      this.busy.set(socket, (this.busy.get(socket) ?? 0) + 1);
      res.once('close', () => {
        const left = (this.busy.get(socket) ?? 1) - 1;
        if (left > 0) this.busy.set(socket, left);
        else this.busy.delete(socket);
      });
    });
  }

  /** Closes every connection that carries no request now and has nothing left to send (the end of
   * an answer still being written goes out first: the next sweep takes that one). */
  closeQuiet(): void {
    for (const socket of this.all) if (!this.busy.has(socket) && socket.writableLength === 0) socket.destroy();
  }
}
