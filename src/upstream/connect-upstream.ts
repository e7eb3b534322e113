import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import { deadline, systemScheduler } from '../core/clock.js';
import { MailotpError, isMailotpError } from '../core/errors.js';
import { MIN_TLS_VERSION } from '../net/tls-context.js';

export interface ConnectUpstreamOptions {
  /**
   * The protocol's STARTTLS dialogue on the plain socket (greeting, command, positive answer).
   * TLS starts on the same socket once it resolves; it must leave no 'data' listener behind.
   */
  starttls?: (socket: net.Socket) => Promise<void>;
  signal?: AbortSignal;
  /** Told how long each connection attempt took (seconds) and whether it succeeded: the metrics. */
  onConnect?: ConnectObserver;
}

export type ConnectObserver = (seconds: number, ok: boolean) => void;

/** What each protocol's upstream takes besides its own options. */
export interface UpstreamObservers {
  onConnect?: ConnectObserver;
}

/**
 * Opens a connection to the upstream mail server, TLS-protected as the endpoint says. One deadline
 * (endpoint.connectTimeout) covers TCP, the STARTTLS dialogue and the TLS handshake. Every failure
 * is a MailotpError MAILOTP_ERR_UPSTREAM_UNAVAILABLE.
 */
export async function connectUpstream(endpoint: UpstreamEndpoint, opts: ConnectUpstreamOptions = {}): Promise<net.Socket | tls.TLSSocket> {
  const observe = opts.onConnect;
  if (!observe) return open(endpoint, opts);
  const started = performance.now();
  try {
    const socket = await open(endpoint, opts);
    observe((performance.now() - started) / 1000, true);
    return socket;
  } catch (err) {
    observe((performance.now() - started) / 1000, false);
    throw err;
  }
}

async function open(endpoint: UpstreamEndpoint, opts: ConnectUpstreamOptions): Promise<net.Socket | tls.TLSSocket> {
  const where = `${endpoint.host}:${endpoint.port}`;
  const fail = (message: string, cause?: unknown) =>
    new MailotpError('MAILOTP_ERR_UPSTREAM_UNAVAILABLE', `upstream ${where}: ${message}`, cause === undefined ? undefined : { cause });

  if (endpoint.tls === 'starttls' && !opts.starttls) throw fail('tls is starttls but no STARTTLS dialogue was given');
  if (opts.signal?.aborted) throw fail('aborted');

  let context: tls.SecureContext | undefined;
  if (endpoint.tls !== 'none') {
    try {
      context = await clientContexts.get(endpoint.ca);
    } catch (err) {
      throw fail(`cannot read CA file ${endpoint.ca}: ${(err as Error).message}`, err);
    }
  }

  const tlsOptions = (): tls.ConnectionOptions => {
    const servername = endpoint.servername ?? (net.isIP(endpoint.host) ? undefined : endpoint.host);
    return {
      // host drives the certificate name check when no servername is set (e.g. an IP SAN).
      host: endpoint.host,
      servername,
      rejectUnauthorized: endpoint.verify,
      // The CA and the protocol floor (MIN_TLS_VERSION) are in the context.
      secureContext: context,
    };
  };

  // One signal for the deadline and the caller's abort; when it fires, every socket made along the
  // way is destroyed, which also ends a STARTTLS dialogue waiting for an answer. Cleared on return
  // (see `deadline` for why not AbortSignal.timeout/any).
  const time = deadline(systemScheduler, endpoint.connectTimeout, opts.signal, { background: true });
  const signal = time.signal;
  const sockets: net.Socket[] = [];
  const destroyAll = () => {
    for (const s of sockets) s.destroy();
  };
  signal.addEventListener('abort', destroyAll, { once: true });

  try {
    if (endpoint.tls === 'implicit') {
      const socket = tls.connect({ ...tlsOptions(), port: endpoint.port });
      sockets.push(socket);
      await once(socket, 'secureConnect', { signal });
      return finish(socket);
    }
    const plain = net.connect({ host: endpoint.host, port: endpoint.port });
    sockets.push(plain);
    await once(plain, 'connect', { signal });
    if (endpoint.tls === 'none') return finish(plain);

    // The dialogue reads with its own listeners; an error event on the socket must not go unheard.
    const swallow = () => undefined;
    plain.on('error', swallow);
    try {
      await opts.starttls!(plain);
    } finally {
      plain.removeListener('error', swallow);
    }
    if (plain.destroyed) throw fail('connection closed during STARTTLS');
    const secure = tls.connect({ ...tlsOptions(), socket: plain });
    sockets.push(secure);
    await once(secure, 'secureConnect', { signal });
    return finish(secure);
  } catch (err) {
    destroyAll();
    if (opts.signal?.aborted) throw fail('aborted');
    if (time.expired) throw fail(`no connection within ${endpoint.connectTimeout} ms`);
    if (isMailotpError(err, 'MAILOTP_ERR_UPSTREAM_UNAVAILABLE') && err.message.startsWith(`upstream ${where}:`)) throw err;
    throw fail(describe(err), err);
  } finally {
    time.clear();
    signal.removeEventListener('abort', destroyAll);
  }
}

function finish<T extends net.Socket>(socket: T): T {
  // Mail protocols are chatty request/response; Nagle only adds latency.
  socket.setNoDelay(true);
  // Held and spliced sessions can sit idle for long; keepalive notices a vanished peer.
  socket.setKeepAlive(true, 60_000);
  return socket;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/**
 * The TLS client contexts of the upstream connections: one without a CA file (the system's CAs)
 * and one per CA file. Building one takes 0.2-0.6 ms on the event loop, and 25-31 ms with the
 * system bundle as the CA file (bench/probes/secure-context.mjs); a login reuses it instead. The
 * file is still read on every connect and the context rebuilt when its bytes differ, so a replaced
 * CA file applies from the next connection, and one that became unreadable fails it, as before.
 */
class ClientContexts {
  private system?: tls.SecureContext;
  private readonly byFile = new Map<string, { ca: Buffer; context: tls.SecureContext }>();

  async get(caFile: string | undefined): Promise<tls.SecureContext> {
    if (caFile === undefined) return (this.system ??= tls.createSecureContext({ minVersion: MIN_TLS_VERSION }));
    const ca = await readFile(caFile);
    const known = this.byFile.get(caFile);
    if (known?.ca.equals(ca)) return known.context;
    const context = tls.createSecureContext({ ca, minVersion: MIN_TLS_VERSION });
    this.byFile.set(caFile, { ca, context });
    return context;
  }
}

const clientContexts = new ClientContexts();
