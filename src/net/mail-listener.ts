import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { ClientInfo } from '../core/login-types.js';
import type { TlsContextProvider } from './tls-context.js';
import type { ConnectionCap, ConnectionLimits } from './connection-limits.js';
import { ConnectionTracker } from './connection-tracker.js';
import { DEFAULT_HEADER_TIMEOUT_MS, readProxyHeader, unmapIPv4, type ProxyHeader } from './proxy-protocol.js';

export type ConnectionHandler = (
  socket: net.Socket | tls.TLSSocket,
  mode: ListenerConfig['tls'],
  client: ClientInfo,
  logger: Logger,
) => Promise<void>;

export interface MailListenerOptions {
  /** How long a proxyProtocol listener waits for the PROXY header (tests shorten it). */
  proxyHeaderTimeoutMs?: number;
  /** How long an implicit-TLS client may take over the handshake. */
  handshakeTimeoutMs?: number;
  /** The process's connection caps, shared by its listeners; none: unlimited. */
  limits?: ConnectionLimits;
  /** The protocol's temporary refusal, sent to a connection past a cap before it is closed. */
  busyLine?: string;
  /** Told of each connection refused by a cap (the metrics). */
  onRefused?: (cap: ConnectionCap) => void;
}

/** A refused client that does not close its side is cut off after this. */
const REFUSAL_LINGER_MS = 2_000;

const HANDSHAKE_TIMEOUT_MS = 20_000;

/** Normalises "::ffff:127.0.0.1" to "127.0.0.1" so approvals bound to an IP match either way. */
export function clientIpOf(socket: net.Socket): string {
  return unmapIPv4(socket.remoteAddress ?? 'unknown');
}

/** Who the client is as the TCP connection itself says. */
function clientOfSocket(socket: net.Socket): ClientInfo {
  const local = socket.localAddress;
  return {
    ip: clientIpOf(socket),
    port: socket.remotePort ?? 0,
    ...(local ? { localIp: unmapIPv4(local), localPort: socket.localPort ?? 0 } : {}),
  };
}

/**
 * One listening port of one protocol: plain TCP (STARTTLS or none) or implicit TLS. With
 * proxyProtocol the port is always plain TCP at first: the PROXY header comes in clear before the
 * TLS handshake, so implicit TLS is then started by hand on the socket once the header is read.
 */
export class MailListener {
  private server: net.Server | tls.Server | null = null;
  readonly connections = new ConnectionTracker();

  constructor(
    readonly config: ListenerConfig,
    private readonly tlsContext: TlsContextProvider | null,
    private readonly handler: ConnectionHandler,
    private readonly logger: Logger,
    private readonly options: MailListenerOptions = {},
  ) {}

  listen(): Promise<number> {
    const implicit = this.config.tls === 'implicit';
    if (implicit && !this.tlsContext) throw new Error('implicit TLS listener without tls.cert/key');
    let server: net.Server | tls.Server;
    if (this.config.proxyProtocol) {
      server = net.createServer((s) => this.acceptProxied(s));
    } else if (implicit) {
      server = tls.createServer({ ...this.tlsContext!.serverOptions(), handshakeTimeout: this.handshakeTimeoutMs() }, (s) => this.accept(s));
      // A failed handshake (scanner, old TLS version) is the client's problem, not ours.
      server.on('tlsClientError', (err, s) => {
        this.logger.debug({ protocol: this.config.protocol, clientIp: clientIpOf(s), err: err.message }, 'TLS handshake failed');
        s.destroy();
      });
    } else {
      server = net.createServer((s) => this.accept(s));
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

  private handshakeTimeoutMs(): number {
    return this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  }

  /** Tracked, no Nagle, and never an unhandled 'error' while nobody else listens. */
  private adopt(socket: net.Socket): void {
    this.connections.add(socket);
    // Mail protocols are request/response: Nagle's delay on small replies stalls every round trip.
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // sessions handle errors; this guards the gap before they attach
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    this.adopt(socket);
    this.start(socket, clientOfSocket(socket), {});
  }

  private acceptProxied(raw: net.Socket): void {
    this.adopt(raw);
    const peer = clientIpOf(raw);
    readProxyHeader(raw, { timeoutMs: this.options.proxyHeaderTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS }).then(
      (header) => {
        if (raw.destroyed) return;
        const client = this.clientFromHeader(header, raw);
        const via = { proxiedBy: peer, proxyVersion: header.version };
        if (this.config.tls === 'implicit') this.startTls(raw, client, via);
        else this.start(raw, client, via);
      },
      (err: unknown) => {
        // Not a balancer speaking the protocol (or a misconfigured one): no reply at all, since
        // any mail-protocol greeting would tell a scanner what sits behind the port.
        this.logger.debug({ protocol: this.config.protocol, peerIp: peer, err: err instanceof Error ? err.message : String(err) }, 'PROXY header refused; connection closed');
        raw.destroy();
      },
    );
  }

  private clientFromHeader(header: ProxyHeader, raw: net.Socket): ClientInfo {
    const a = header.addresses;
    if (!a) return clientOfSocket(raw);
    return { ip: a.source.ip, port: a.source.port, localIp: a.destination.ip, localPort: a.destination.port };
  }

  /**
   * Implicit TLS after the PROXY header: what tls.Server does on accept, by hand. The context is
   * read per connection, so reloadTls() (which swaps the provider's context) reaches new
   * connections without a server to update.
   */
  private startTls(raw: net.Socket, client: ClientInfo, via: Record<string, unknown>): void {
    const ctx = this.tlsContext!;
    let secured: tls.TLSSocket;
    try {
      secured = new tls.TLSSocket(raw, { ...ctx.socketOptions(), isServer: true });
    } catch (err) {
      this.logger.warn({ protocol: this.config.protocol, clientIp: client.ip, err: err instanceof Error ? err.message : String(err) }, 'client TLS setup failed');
      raw.destroy();
      return;
    }
    this.connections.add(secured);
    const failed = (why: string) => {
      clearTimeout(timer);
      this.logger.debug({ protocol: this.config.protocol, clientIp: client.ip, ...via, err: why }, 'TLS handshake failed');
      secured.destroy();
      raw.destroy();
    };
    const onError = (err: Error) => failed(err.message);
    const timer = setTimeout(() => failed('handshake timed out'), this.handshakeTimeoutMs());
    secured.on('error', onError);
    secured.once('close', () => clearTimeout(timer));
    secured.once('secure', () => {
      clearTimeout(timer);
      secured.off('error', onError);
      secured.on('error', () => undefined); // as in adopt(): until the session attaches its own
      this.start(secured, client, via);
    });
  }

  /**
   * Counted here, where the session would begin: the real client address is known (after the
   * PROXY header) and the protocol can say why it refuses (after the implicit-TLS handshake).
   * Sockets still in the handshake or the header are bounded by their timeouts instead.
   */
  private start(socket: net.Socket | tls.TLSSocket, client: ClientInfo, via: Record<string, unknown>): void {
    const cid = randomBytes(6).toString('base64url');
    const log = this.logger.child({ cid, protocol: this.config.protocol, clientIp: client.ip });
    const admission = this.options.limits?.admit(client.ip);
    if (admission && !admission.admitted) {
      log.warn({ event: 'connection.refused', cap: admission.cap, limit: admission.limit, port: this.config.port, ...via }, `connection refused: limits.${admission.cap} reached`);
      this.options.onRefused?.(admission.cap);
      this.refuse(socket);
      return;
    }
    if (admission) socket.once('close', admission.release);
    log.debug({ tls: this.config.tls, port: this.config.port, ...via }, 'connection');
    // The callbacks below wait as long as the session (hours, once spliced): they keep the
    // bindings, not a child logger, which costs half a KiB per session.
    const bindings = { cid, protocol: this.config.protocol, clientIp: client.ip };
    this.handler(socket, this.config.tls, client, log).then(
      () => {
        if (this.logger.isLevelEnabled('debug')) this.logger.child(bindings).debug('connection closed');
      },
      (err: unknown) => {
        this.logger.child(bindings).error({ err: err instanceof Error ? err.message : String(err) }, 'session failed');
        socket.destroy();
      },
    );
  }

  private refuse(socket: net.Socket): void {
    const line = this.options.busyLine;
    if (line === undefined) {
      socket.destroy();
      return;
    }
    socket.end(`${line}\r\n`);
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
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
