import type { Socket } from 'node:net';

/** Keeps the open client sockets so shutdown can wait for them, then end the stragglers. */
export class ConnectionTracker {
  private readonly sockets = new Set<Socket>();
  private waiters: (() => void)[] = [];

  add(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) {
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Resolves true when every connection has closed within timeoutMs, else false. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.sockets.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}
