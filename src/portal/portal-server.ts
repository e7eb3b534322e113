import http from 'node:http';
import https from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { PortalConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { ApprovalService } from '../core/approval-service.js';
import type { DeviceService } from '../core/device-service.js';
import { MailotpError } from '../core/errors.js';
import type { RequestService } from '../core/request-service.js';
import type { Logger } from '../log/logger.js';
import { MIN_TLS_VERSION, type TlsContextProvider } from '../net/tls-context.js';
import { registerAuthenticatorApp } from './app/register-app.js';
import { DEVICE_API_BODY_LIMIT, errorName, jsonErrorHandler, registerDeviceApi, type DeviceApiHandle } from './device-api.js';
import { registerPairingApi, type PairingApiDeps } from './pairing-api.js';
import { registerPages, type PagesDeps } from './pages/register-pages.js';
import { OpenConnections } from './open-connections.js';

export interface PortalServerDeps {
  settings: Pick<PortalConfig, 'host' | 'port' | 'tls' | 'enabled'>;
  /** Required when settings.tls is true. */
  tls: TlsContextProvider | null;
  devices: DeviceService;
  requests: RequestService;
  approvals: ApprovalService;
  /** The VAPID public key when Web Push is configured; the app asks for it at /api/v1/webpush/key. */
  webPushPublicKey?: string;
  /** /healthz: resolves while the state behind the portal answers (main passes the store's ping). */
  ping(): Promise<void>;
  logger: Logger;
  /** Event-stream heartbeat interval (tests) [15000]. */
  heartbeatMs?: number;
  /** The clock of the device API's failure counter [system clock]. */
  clock?: Clock;
  /** The web pages and the pairing API; without them the portal serves only the device API. */
  web?: { pages: PagesDeps; pairing: PairingApiDeps };
}

/** A slow or silent TLS client must not hold a socket for long. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** While the portal closes, connections that carry no request are dropped this often. */
const CLOSE_SWEEP_MS = 250;

/**
 * The portal's HTTP(S) listener: web pages, pairing and device APIs, /healthz. The expiry sweep that
 * settles unanswered requests on the event streams is not its own: main.ts runs it for the process.
 */
export class PortalServer {
  private readonly app: FastifyInstance;
  private readonly api: DeviceApiHandle;
  private readonly httpsServer: https.Server | null;
  private closing: Promise<void> | null = null;
  private stopping = false;
  private readonly connections = new OpenConnections();

  constructor(private readonly deps: PortalServerDeps) {
    const { settings, tls: tlsProvider, logger } = deps;
    if (settings.tls && !tlsProvider) {
      throw new MailotpError('MAILOTP_ERR_CONFIG', 'portal.tls is on but no TLS certificate and key are configured');
    }
    let httpsServer: https.Server | null = null;
    this.app = Fastify({
      // Fastify's own request logging would print URLs and headers at info; ours is below, at debug.
      logger: false,
      bodyLimit: DEVICE_API_BODY_LIMIT,
      trustProxy: false,
      return503OnClosing: true,
      // A JSON API: "5" is not a number and a string is not a boolean.
      ajv: { customOptions: { coerceTypes: false } },
      // Errors the router raises before any route (and so any error handler) is chosen.
      frameworkErrors: (err, _request, genericReply) => {
        // This hook's reply type is generic over route types it never has; it is a plain reply.
        const reply = genericReply as unknown as FastifyReply;
        const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
        void reply.code(status).send({ error: errorName(status) });
      },
      serverFactory: (handler) => {
        if (settings.tls && tlsProvider) {
          const server = https.createServer(
            { ...tlsProvider.serverOptions(), minVersion: MIN_TLS_VERSION, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
            handler,
          );
          server.on('tlsClientError', (err, socket) => {
            logger.debug({ clientIp: socket.remoteAddress, err: err.message }, 'portal TLS handshake failed');
            socket.destroy();
          });
          httpsServer = server;
          this.connections.watch(server, true);
          // https.Server is an http.Server as far as fastify is concerned.
          return server as unknown as http.Server;
        }
        const server = http.createServer(handler);
        this.connections.watch(server, false);
        return server;
      },
    });
    this.httpsServer = httpsServer;

    this.app.setErrorHandler(jsonErrorHandler(logger));
    this.app.setNotFoundHandler((_request, reply) => {
      void reply.code(404).send({ error: 'not-found' });
    });
    this.app.addHook('onSend', async (_request, reply, payload) => {
      // Node keeps a connection whose response was in flight at close() alive afterwards, and the
      // close then waits for the browser to drop it (minutes for Chromium): say it ends here.
      if (this.stopping) void reply.header('Connection', 'close');
      void reply.header('X-Content-Type-Options', 'nosniff');
      void reply.header('Referrer-Policy', 'no-referrer');
      if (!reply.hasHeader('Cache-Control')) void reply.header('Cache-Control', 'no-store');
      return payload;
    });
    // Route patterns, not raw URLs, and never headers or bodies: tokens stay out of the log.
    this.app.addHook('onResponse', async (request, reply) => {
      logger.debug(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime), clientIp: request.ip },
        'portal request',
      );
    });

    this.app.get('/healthz', async (_request, reply) => {
      try {
        await deps.ping();
        return { status: 'ok' };
      } catch {
        return reply.code(503).send({ status: 'unavailable' });
      }
    });

    // First, so that its security headers, cookies and CSRF check cover every route after it.
    if (deps.web) registerPages(this.app, deps.web.pages);
    registerAuthenticatorApp(this.app, { webPushPublicKey: deps.webPushPublicKey ?? null });

    this.api = registerDeviceApi(this.app, {
      devices: deps.devices,
      requests: deps.requests,
      approvals: deps.approvals,
      logger,
      ...(deps.heartbeatMs !== undefined ? { heartbeatMs: deps.heartbeatMs } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    });
    if (deps.web) registerPairingApi(this.app, deps.web.pairing);
  }

  /** Starts listening on settings.host:settings.port (0 picks a free port) and returns the port. */
  async listen(): Promise<{ port: number }> {
    const { host, port } = this.deps.settings;
    await this.app.listen({ host, port });
    const addr = this.app.server.address();
    return { port: typeof addr === 'object' && addr ? addr.port : port };
  }

  /**
   * Puts the provider's current certificate in place for new connections; call it after
   * TlsContextProvider.reload(). Connections already open keep theirs.
   */
  reloadTls(): void {
    if (this.httpsServer && this.deps.tls) this.httpsServer.setSecureContext(this.deps.tls.secureOptions());
  }

  /** Stops accepting, ends the event streams and waits for requests in flight. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      // Also done by the device API's preClose hook; done here first so that nothing waits on them.
      this.api.closeStreams();
      // Connections with no request in flight are closed now and until the close is done (see
      // OpenConnections); those with one get their answer, with Connection: close (onSend).
      this.connections.closeQuiet();
      const sweep = setInterval(() => this.connections.closeQuiet(), CLOSE_SWEEP_MS);
      try {
        await this.app.close();
      } finally {
        clearInterval(sweep);
      }
    })();
    return this.closing;
  }
}
