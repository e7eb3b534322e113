import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { ClientInfo } from '../core/login-types.js';
import type { TlsContextProvider } from './tls-context.js';
import { ConnectionTracker } from './connection-tracker.js';

export type ConnectionHandler = (
  socket: net.Socket | tls.TLSSocket,
  mode: ListenerConfig['tls'],
  client: ClientInfo,
  logger: Logger,
) => Promise<void>;

/** Normalises "::ffff:127.0.0.1" to "127.0.0.1" so approvals bound to an IP match either way. */
export function clientIpOf(socket: net.Socket): string {
  const ip = socket.remoteAddress ?? 'unknown';
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** One listening port of one protocol: plain TCP (STARTTLS or none) or implicit TLS. */
export class MailListener {
  private server: net.Server | tls.Server | null = null;
  readonly connections = new ConnectionTracker();

  constructor(
    readonly config: ListenerConfig,
    private readonly tlsContext: TlsContextProvider | null,
    private readonly handler: ConnectionHandler,
    private readonly logger: Logger,
  ) {}

  listen(): Promise<number> {
    const implicit = this.config.tls === 'implicit';
    if (implicit && !this.tlsContext) throw new Error('implicit TLS listener without tls.cert/key');
    const server = implicit
      ? tls.createServer({ ...this.tlsContext!.serverOptions(), handshakeTimeout: 20_000 }, (s) => this.accept(s))
      : net.createServer((s) => this.accept(s));
    if (implicit) {
      // A failed handshake (scanner, old TLS version) is the client's problem, not ours.
      server.on('tlsClientError', (err, s) => {
        this.logger.debug({ protocol: this.config.protocol, clientIp: clientIpOf(s), err: err.message }, 'TLS handshake failed');
        s.destroy();
      });
    }
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.host, port: this.config.port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.logger.error({ err: err.message }, 'listener error'));
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.config.port);
      });
    });
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    this.connections.add(socket);
    // Mail protocols are request/response: Nagle's delay on small replies stalls every round trip.
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // sessions handle errors; this guards the gap before they attach
    const cid = randomBytes(6).toString('base64url');
    const local = socket.localAddress;
    const client: ClientInfo = {
      ip: clientIpOf(socket),
      port: socket.remotePort ?? 0,
      ...(local ? { localIp: local.startsWith('::ffff:') ? local.slice(7) : local, localPort: socket.localPort ?? 0 } : {}),
    };
    const log = this.logger.child({ cid, protocol: this.config.protocol, clientIp: client.ip });
    log.debug({ tls: this.config.tls, port: this.config.port }, 'connection');
    this.handler(socket, this.config.tls, client, log).then(
      () => log.debug('connection closed'),
      (err: unknown) => {
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'session failed');
        socket.destroy();
      },
    );
  }

  /** New TLS connections get the reloaded certificate; running ones keep theirs. */
  reloadTls(): void {
    if (this.server instanceof tls.Server && this.tlsContext) this.server.setSecureContext(this.tlsContext.secureOptions());
  }

  /** Stops accepting; open sessions go on (close's callback would wait for them, so it is not awaited). */
  stopAccepting(): void {
    this.server?.close();
  }
}
