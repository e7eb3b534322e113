import type { Config } from './config/schema.js';
import type { Protocol } from './core/types.js';
import { systemClock, type Clock } from './core/clock.js';
import { MailotpError } from './core/errors.js';
import { configHoldTimeWarnings } from './core/hold-times.js';
import { loadOrCreateSecretKey } from './config/secret-key-file.js';
import { Lifecycle } from './core/lifecycle.js';
import { buildCore, type CoreServices } from './core/services.js';
import { mergeSpellings } from './core/user-merge.js';
import { AuditTee } from './log/audit-tee.js';
import { createLogger, type Logger } from './log/logger.js';
import { ConnectionLimits } from './net/connection-limits.js';
import { MailListener } from './net/mail-listener.js';
import { TlsContextProvider } from './net/tls-context.js';
import { PortalServer } from './portal/portal-server.js';
import { loadWebAuthn } from './core/passkey-service.js';
import type { PagesDeps } from './portal/pages/register-pages.js';
import { ImapUpstream } from './upstream/imap-upstream.js';
import { imapService } from './protocols/imap/imap-service.js';
import { smtpService } from './protocols/smtp/smtp-service.js';
import { pop3Service } from './protocols/pop3/pop3-service.js';
import type { ProtocolContext, ProtocolService } from './protocols/protocol-service.js';
import { LiveSessions } from './protocols/shared/live-sessions.js';
import { LogNotifier } from './push/log-notifier.js';
import type { Notifier } from './core/ports/notifier.js';
import { WebhookNotifier } from './push/webhook-notifier.js';
import { loadOrCreateVapidKeys, type VapidKeys } from './push/vapid-keys.js';
import { WebPushNotifier } from './push/webpush-notifier.js';
import { metered, startMetricsListener } from './metrics/metrics-listener.js';
import { createStore } from './stores/create-store.js';
import type { Store } from './core/ports/store.js';

export interface RunningMailotp {
  core: CoreServices;
  logger: Logger;
  /** The ports actually bound, in config order (useful with port 0). */
  listeners: { protocol: string; tls: string; host: string; port: number }[];
  portal: { port: number } | null;
  /** The metrics listener's port; null without metrics.port. */
  metrics: { port: number } | null;
  reloadTls(): void;
  /** Stops accepting, lets sessions finish up to drainMs, then closes everything. */
  stop(drainMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  clock?: Clock;
  store?: Store;
  /** The tee the given logger writes audit events to; without one, only a logger made here is teed. */
  auditTee?: AuditTee;
}

/** The configured push channels; firebase-admin (several MB of heap) is loaded only for FCM. */
async function buildNotifiers(config: Config, logger: Logger, vapid: VapidKeys | null): Promise<Notifier[]> {
  const notifiers: Notifier[] = [new LogNotifier(logger.child({ component: 'push' }))];
  const publicUrl = config.portal.publicUrl;
  if (config.push.webhook) {
    const w = config.push.webhook;
    notifiers.push(
      new WebhookNotifier({ url: w.url, secret: w.secret, timeoutMs: w.timeout }, logger.child({ component: 'webhook' }), publicUrl ? { publicUrl } : {}),
    );
  }
  if (config.push.fcm) {
    const { FcmNotifier } = await import('./push/fcm-notifier.js');
    notifiers.push(FcmNotifier.fromServiceAccountFile(config.push.fcm.serviceAccountFile, logger.child({ component: 'fcm' }), publicUrl ? { publicUrl } : {}));
  }
  if (config.push.webpush && vapid) {
    const w = config.push.webpush;
    notifiers.push(new WebPushNotifier({ keys: vapid, subject: w.subject, timeoutMs: w.timeout }, logger.child({ component: 'webpush' })));
  }
  return notifiers;
}

/**
 * The web sign-in's password check: a login at the upstream IMAP server, like a mail client's,
 * with the browser's address forwarded, through the core's limits; the session is closed at once.
 */
function webPasswordCheck(config: Config, core: CoreServices, logger: Logger): PagesDeps['checkPassword'] {
  const endpoint = config.upstream.imap;
  const upstream = endpoint ? new ImapUpstream(endpoint, logger.child({ component: 'upstream', protocol: 'imap', for: 'portal' })) : null;
  return (user, password, client) =>
    core.authorizer.checkPassword({
      user,
      clientIp: client.ip,
      verify: async () => (upstream ? upstream.login(user, password, client) : { kind: 'unavailable', reason: 'no upstream.imap configured' }),
    });
}

/** The VAPID key pair, read from (or created in) push.webpush.vapidKeyFile; null without Web Push. */
function webPushKeys(config: Config, logger: Logger): { keys: VapidKeys } | null {
  const w = config.push.webpush;
  if (!w) return null;
  const { keys, created } = loadOrCreateVapidKeys(w.vapidKeyFile);
  if (created) logger.warn({ file: w.vapidKeyFile }, 'created a new VAPID key pair for Web Push; every instance must use this same file');
  return { keys };
}

/** Builds everything one instance serves, in order: log → store → core → upstreams → servers. */
export async function startMailotp(config: Config, options: StartOptions = {}): Promise<RunningMailotp> {
  // The log's audit events are teed into the store's audit trail (a logger handed in by a test is not).
  const tee = options.auditTee ?? (options.logger ? null : new AuditTee());
  const logger = options.logger ?? createLogger({ level: config.log.level, ...(tee ? { audit: tee } : {}) });
  const clock = options.clock ?? systemClock;
  // Before anything opens: a bad key file stops the start with nothing to close.
  const webPush = webPushKeys(config, logger);
  const secret = loadOrCreateSecretKey(config.portal.secretKeyFile);
  if (secret.created) logger.warn({ file: config.portal.secretKeyFile }, 'created a new secret key for authenticator-app keys; every instance must use this same file');
  // Each part opened below registers its closer here: a failed start and stop() run the same ones,
  // last opened first, so the store (opened first) closes last.
  const life = new Lifecycle(logger);
  try {
    return await startParts(config, { ...options, logger, clock }, { tee, webPush, secretKey: secret.key, life });
  } catch (err) {
    // A port already in use (or any start failure) leaves nothing running behind it.
    await life.close();
    throw err;
  }
}

interface Opened {
  tee: AuditTee | null;
  webPush: { keys: VapidKeys } | null;
  secretKey: Buffer;
  life: Lifecycle;
}

async function startParts(
  config: Config,
  options: StartOptions & { logger: Logger; clock: Clock },
  { tee, webPush, secretKey, life }: Opened,
): Promise<RunningMailotp> {
  const { logger, clock } = options;
  // Counted from the first store call on, when metrics.port is set; nothing is counted (and
  // prom-client is not loaded) otherwise.
  const metrics = config.metrics.port !== undefined ? new (await import('./metrics/prometheus-metrics.js')).PrometheusMetrics(clock) : null;
  const unmeteredStore =
    options.store ??
    (await createStore(config.store, {
      onError: (err) => logger.warn({ component: 'store', err: err.message }, 'store connection problem') },
    ));
  life.add('store', () => unmeteredStore.close());
  // A hold the clients give up on before it ends turns the retry advice into a network error.
  for (const w of configHoldTimeWarnings(config)) logger.warn({ key: w.path }, `${w.path}: ${w.message}`);
  const { store, notifiers } = metered(metrics, unmeteredStore, await buildNotifiers(config, logger, webPush?.keys ?? null));
  life.add('notifiers', () => Promise.all(notifiers.map((n) => n.close?.())));
  const core = buildCore(config, { store, clock, logger, notifiers, secretKey });
  tee?.attach((event, fields) => core.audit.record(event, fields));
  life.add('audit trail', () => core.audit.flush());
  try {
    // Before any listener: a record under another spelling would otherwise let that user in without
    // two-factor. The store must be reachable for this; a start that cannot check exits.
    await mergeSpellings(store, core.names, clock, logger.child({ component: 'core' }));
  } catch (err) {
    throw new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', `cannot check stored user names at start-up: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // Every instance sweeps expired requests (the store makes each count once), portal or not.
  life.add('expiry sweep', core.requests.startExpirySweeper());
  const tls = config.tls ? new TlsContextProvider(config.tls) : null;

  // One service per protocol with an upstream; its listeners are skipped (with a warning) otherwise.
  const sessions = new LiveSessions();
  const services: Partial<Record<Protocol, ProtocolService>> = {};
  if (tls) {
    const ctx: ProtocolContext = {
      core: core.authorizer,
      upstreams: config.upstream,
      limits: config.limits,
      progressIntervalMs: config.daemonOtp.progressInterval,
      tls,
      logger,
      sessions,
      ...(metrics ? { metrics } : {}),
    };
    const built: [Protocol, ProtocolService | null][] = [
      ['imap', imapService(ctx)],
      ['pop3', pop3Service(ctx)],
      ['smtp', smtpService(ctx)],
    ];
    for (const [protocol, service] of built) {
      if (!service) continue;
      services[protocol] = service;
      life.add(`${protocol} upstream`, () => service.stop());
    }
  }
  await Promise.all(Object.values(services).map((s) => s.start()));

  // One count for the whole process: an address's IMAP, POP3 and SMTP connections add up.
  const connectionLimits = new ConnectionLimits(config.limits);
  const listeners: MailListener[] = [];
  const bound: RunningMailotp['listeners'] = [];
  // A failed start has no session worth waiting for; stop() sets the drain it was given.
  let drainMs = 0;
  life.add('mail listeners', () => drainMailListeners(listeners, sessions, drainMs, logger));
  for (const lc of config.listeners) {
    const service = services[lc.protocol];
    if (!service) {
      // Only when no tls.cert/key is configured (the schema requires an upstream per listener).
      logger.warn({ protocol: lc.protocol, port: lc.port }, `${lc.protocol} listener skipped: mail listeners need tls.cert and tls.key`);
      continue;
    }
    const listener = new MailListener(lc, tls, service.handler, logger, {
      limits: connectionLimits,
      busyLine: service.busyLine,
      ...(metrics ? { onRefused: (cap: string) => metrics.connectionRefused(lc.protocol, cap) } : {}),
    });
    const port = await listener.listen();
    listeners.push(listener);
    bound.push({ protocol: lc.protocol, tls: lc.tls, host: lc.host, port });
    logger.info({ protocol: lc.protocol, tls: lc.tls, host: lc.host, port }, 'listening');
  }
  let portal: PortalServer | null = null;
  let portalPort: { port: number } | null = null;
  if (config.portal.enabled) {
    const portalLog = logger.child({ component: 'portal' });
    // Passkeys' library is loaded on demand (the admin CLI never needs it); the portal wants it now.
    await loadWebAuthn();
    const server = new PortalServer({
      settings: config.portal,
      tls: config.portal.tls ? tls : null,
      devices: core.devices,
      requests: core.requests,
      approvals: core.approvals,
      ...(webPush ? { webPushPublicKey: webPush.keys.publicKey } : {}),
      ping: () => store.ping(),
      clock,
      logger: portalLog,
      web: {
        pages: {
          core,
          checkPassword: webPasswordCheck(config, core, logger),
          ...(config.portal.publicUrl ? { publicUrl: config.portal.publicUrl } : {}),
          tls: config.portal.tls,
          logger: portalLog,
          forwardAuth: {
            allowedRedirects: config.portal.allowedRedirects,
            ...(config.portal.cookieDomain ? { cookieDomain: config.portal.cookieDomain } : {}),
          },
        },
        pairing: { pairing: core.pairing, logger: portalLog },
      },
    });
    portalPort = await server.listen();
    portal = server;
    life.add('portal', () => server.close());
    logger.info({ host: config.portal.host, port: portalPort.port, tls: config.portal.tls }, 'portal listening');
  }
  let metricsPort: { port: number } | null = null;
  const metricsListener = await startMetricsListener(config, metrics, store, logger);
  if (metricsListener) {
    life.add('metrics listener', () => metricsListener.server.close());
    metricsPort = { port: metricsListener.port };
  }

  let stopping: Promise<void> | null = null;
  return {
    core,
    logger,
    listeners: bound,
    portal: portalPort,
    metrics: metricsPort,
    reloadTls() {
      if (!tls) return;
      tls.reload();
      for (const l of listeners) l.reloadTls();
      portal?.reloadTls();
      logger.info('TLS certificate reloaded');
    },
    stop(drain = config.shutdown.drainTimeout) {
      stopping ??= (async () => {
        drainMs = drain;
        await life.close();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Stops accepting, says each protocol's goodbye to the pre-login sessions (held logins included),
 * lets spliced sessions run up to drainMs, then closes what is left.
 */
async function drainMailListeners(listeners: MailListener[], sessions: LiveSessions, drainMs: number, logger: Logger): Promise<void> {
  for (const l of listeners) l.stopAccepting();
  const preLogin = sessions.shutDownAll();
  const open = listeners.reduce((n, l) => n + l.connections.size, 0);
  logger.info({ open, preLogin, drainMs }, 'stopping: no new connections, waiting for sessions');
  const drained = await Promise.all(listeners.map((l) => l.connections.drain(drainMs)));
  if (drained.includes(false)) {
    logger.warn('drain timeout: closing the remaining sessions');
    for (const l of listeners) l.connections.destroyAll();
  }
}
