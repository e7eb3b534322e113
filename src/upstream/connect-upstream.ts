import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
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

  let ca: Buffer | undefined;
  if (endpoint.tls !== 'none' && endpoint.ca) {
    try {
      // Read on every connect so a rotated CA file takes effect without a restart.
      ca = await readFile(endpoint.ca);
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
      minVersion: MIN_TLS_VERSION,
      rejectUnauthorized: endpoint.verify,
      ca,
    };
  };

  // Every socket made along the way, so the deadline and the abort signal can tear down all of them.
  const sockets: net.Socket[] = [];
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  let rejectStop: ((err: Error) => void) | undefined;
  const stopped = new Promise<never>((_, reject) => (rejectStop = reject));
  // Keeps an early stop from surfacing as an unhandled rejection while nothing awaits it yet.
  stopped.catch(() => undefined);
  const stop = (err: MailotpError) => {
    for (const s of sockets) s.destroy();
    rejectStop?.(err);
  };
  timer = setTimeout(() => stop(fail(`no connection within ${endpoint.connectTimeout} ms`)), endpoint.connectTimeout);
  if (opts.signal) {
    onAbort = () => stop(fail('aborted'));
    opts.signal.addEventListener('abort', onAbort, { once: true });
  }

  const settle = <T extends net.Socket>(socket: T, readyEvent: 'connect' | 'secureConnect'): Promise<T> =>
    Promise.race([
      stopped,
      new Promise<T>((resolve, reject) => {
        const onReady = () => {
          socket.removeListener('error', onError);
          resolve(socket);
        };
        const onError = (err: Error) => {
          socket.removeListener(readyEvent, onReady);
          reject(err);
        };
        socket.once(readyEvent, onReady);
        socket.once('error', onError);
      }),
    ]);

  try {
    if (endpoint.tls === 'implicit') {
      const socket = tls.connect({ ...tlsOptions(), port: endpoint.port });
      sockets.push(socket);
      await settle(socket, 'secureConnect');
      return finish(socket);
    }
    const plain = net.connect({ host: endpoint.host, port: endpoint.port });
    sockets.push(plain);
    await settle(plain, 'connect');
    if (endpoint.tls === 'none') return finish(plain);

    // The dialogue reads with its own listeners; an error event on the socket must not go unheard.
    const swallow = () => undefined;
    plain.on('error', swallow);
    try {
      await Promise.race([stopped, opts.starttls!(plain)]);
    } finally {
      plain.removeListener('error', swallow);
    }
    if (plain.destroyed) throw fail('connection closed during STARTTLS');
    const secure = tls.connect({ ...tlsOptions(), socket: plain });
    sockets.push(secure);
    await settle(secure, 'secureConnect');
    return finish(secure);
  } catch (err) {
    for (const s of sockets) s.destroy();
    if (isMailotpError(err, 'MAILOTP_ERR_UPSTREAM_UNAVAILABLE') && err.message.startsWith(`upstream ${where}:`)) throw err;
    throw fail(describe(err), err);
  } finally {
    clearTimeout(timer);
    timer = undefined;
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
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
