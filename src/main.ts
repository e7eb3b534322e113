import type { Config } from './config/schema.js';
import { systemClock, type Clock } from './core/clock.js';
import { buildCore, type CoreServices } from './core/services.js';
import { createLogger, type Logger } from './log/logger.js';
import { MailListener, type ConnectionHandler } from './net/mail-listener.js';
import { TlsContextProvider } from './net/tls-context.js';
import { PortalServer } from './portal/portal-server.js';
import { handleImapConnection } from './protocols/imap/imap-session.js';
import { LogNotifier } from './push/log-notifier.js';
import type { Notifier } from './push/notifier.js';
import { WebhookNotifier } from './push/webhook-notifier.js';
import { createStore } from './stores/create-store.js';
import type { Store } from './stores/store.js';
import { ImapUpstream } from './upstream/imap-upstream.js';
import { splice } from './upstream/splice.js';

export interface RunningMailotp {
  core: CoreServices;
  logger: Logger;
  /** The ports actually bound, in config order (useful with port 0). */
  listeners: { protocol: string; tls: string; host: string; port: number }[];
  portal: { port: number } | null;
  reloadTls(): void;
  /** Stops accepting, lets sessions finish up to drainMs, then closes everything. */
  stop(drainMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  clock?: Clock;
  store?: Store;
}

function buildNotifiers(config: Config, logger: Logger): Notifier[] {
  const notifiers: Notifier[] = [new LogNotifier(logger.child({ component: 'push' }))];
  const publicUrl = config.portal.publicUrl;
  if (config.push.webhook) {
    const w = config.push.webhook;
    notifiers.push(
      new WebhookNotifier({ url: w.url, secret: w.secret, timeoutMs: w.timeout }, logger.child({ component: 'webhook' }), publicUrl ? { publicUrl } : {}),
    );
  }
  if (config.push.fcm) {
    logger.warn({ key: 'push.fcm' }, 'push.fcm is configured but Firebase push is not part of this version yet; requests are listed on the device API and sent to the other notifiers');
  }
  return notifiers;
}

/** Builds everything one instance serves, in order: log → store → core → upstreams → servers. */
export async function startMailotp(config: Config, options: StartOptions = {}): Promise<RunningMailotp> {
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const clock = options.clock ?? systemClock;
  const store =
    options.store ??
    createStore(
      config.store.driver === 'redis'
        ? { driver: 'redis', url: config.store.url ?? '', keyPrefix: config.store.keyPrefix }
        : { driver: 'sqlite', path: config.store.path },
      { onError: (err) => logger.warn({ component: 'store', err: err.message }, 'store connection problem') },
    );
  const notifiers = buildNotifiers(config, logger);
  const core = buildCore(config, { store, clock, logger, notifiers });
  const tls = config.tls ? new TlsContextProvider(config.tls) : null;

  const imapEndpoint = config.upstream.imap;
  const imapUpstream = imapEndpoint ? new ImapUpstream(imapEndpoint, logger.child({ component: 'upstream', protocol: 'imap' })) : null;
  if (imapUpstream) await imapUpstream.start();

  const handlers: Partial<Record<Config['listeners'][number]['protocol'], ConnectionHandler>> = {};
  if (imapUpstream && tls) {
    handlers.imap = (socket, mode, client, log) =>
      handleImapConnection(socket, mode, client, {
        authorize: core.authorizer.authorize,
        upstreamLogin: (user, password, c, signal) => imapUpstream.login(user, password, c, signal),
        upstreamCapabilities: () => imapUpstream.capabilities(),
        splice: (a, b, o) => splice(a, b, { ...o, logger: log }),
        tls,
        limits: config.limits,
        progressIntervalMs: config.daemonOtp.progressInterval,
        logger: log,
      });
  }

  const listeners: MailListener[] = [];
  const bound: RunningMailotp['listeners'] = [];
  try {
    for (const lc of config.listeners) {
      const handler = handlers[lc.protocol];
      if (!handler) {
        logger.warn({ protocol: lc.protocol, port: lc.port }, `${lc.protocol} listeners are not served by this version yet; skipped`);
        continue;
      }
      const listener = new MailListener(lc, tls, handler, logger);
      const port = await listener.listen();
      listeners.push(listener);
      bound.push({ protocol: lc.protocol, tls: lc.tls, host: lc.host, port });
      logger.info({ protocol: lc.protocol, tls: lc.tls, host: lc.host, port }, 'listening');
    }
  } catch (err) {
    for (const l of listeners) l.stopAccepting();
    await store.close().catch(() => undefined);
    throw err;
  }

  let portal: PortalServer | null = null;
  let portalPort: { port: number } | null = null;
  if (config.portal.enabled) {
    portal = new PortalServer({
      settings: config.portal,
      tls: config.portal.tls ? tls : null,
      devices: core.devices,
      requests: core.requests,
      store,
      logger: logger.child({ component: 'portal' }),
    });
    portalPort = await portal.listen();
    logger.info({ host: config.portal.host, port: portalPort.port, tls: config.portal.tls }, 'portal listening');
  }

  let stopping: Promise<void> | null = null;
  return {
    core,
    logger,
    listeners: bound,
    portal: portalPort,
    reloadTls() {
      if (!tls) return;
      tls.reload();
      for (const l of listeners) l.reloadTls();
      portal?.reloadTls();
      logger.info('TLS certificate reloaded');
    },
    stop(drainMs = config.shutdown.drainTimeout) {
      stopping ??= (async () => {
        for (const l of listeners) l.stopAccepting();
        const open = listeners.reduce((n, l) => n + l.connections.size, 0);
        logger.info({ open, drainMs }, 'stopping: no new connections, waiting for sessions');
        const drained = await Promise.all(listeners.map((l) => l.connections.drain(drainMs)));
        if (drained.includes(false)) {
          logger.warn('drain timeout: closing the remaining sessions');
          for (const l of listeners) l.connections.destroyAll();
        }
        await portal?.close();
        imapUpstream?.stop?.();
        await Promise.all(notifiers.map((n) => n.close?.()));
        await store.close();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}
