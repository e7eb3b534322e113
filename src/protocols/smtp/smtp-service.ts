import os from 'node:os';
import { splice } from '../../upstream/splice.js';
import { SmtpUpstream } from '../../upstream/smtp-upstream.js';
import { protocolMeter, type ProtocolContext, type ProtocolService } from '../protocol-service.js';
import { smtpTooManyConnections } from './smtp-replies.js';
import { handleSmtpConnection } from './smtp-session.js';

/** The greeting name: the machine's name when it is a usable host name. */
function greetingHostname(): string {
  const name = os.hostname();
  return /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(name) ? name : 'localhost';
}

/** The SMTP listeners' handler, bound to the configured upstream; null when upstream.smtp is not set. */
export function smtpService(ctx: ProtocolContext): ProtocolService | null {
  const { config, tls, logger } = ctx;
  const endpoint = config.upstream.smtp;
  if (!endpoint) return null;
  const meter = protocolMeter('smtp', ctx);
  const hostname = greetingHostname();
  const upstream = new SmtpUpstream(endpoint, logger.child({ component: 'upstream', protocol: 'smtp' }), { heloName: hostname, onConnect: meter.upstreamConnected });
  return {
    start: () => upstream.start(),
    stop: () => upstream.stop(),
    busyLine: smtpTooManyConnections(hostname),
    handler: (socket, mode, client, log) =>
      meter.session(
        handleSmtpConnection(socket, mode, client, {
          authorize: meter.authorize,
          upstreamLogin: (user, password, c, signal) => meter.upstreamLogin(upstream.login(user, password, c, signal)),
          upstreamExtensions: () => upstream.extensions(),
          splice: (a, b, o) => meter.spliced(splice(a, b, { ...o, logger: log })),
          tls,
          limits: config.limits,
          sessions: ctx.sessions,
          hostname,
          logger: log,
        }),
      ),
  };
}
