import { splice } from '../../upstream/splice.js';
import { ImapUpstream } from '../../upstream/imap-upstream.js';
import { protocolMeter, type ProtocolContext, type ProtocolService } from '../protocol-service.js';
import { IMAP_TOO_MANY_CONNECTIONS } from './imap-replies.js';
import { handleImapConnection } from './imap-session.js';

/** The IMAP listeners' handler, bound to the configured upstream; null when upstream.imap is not set. */
export function imapService(ctx: ProtocolContext): ProtocolService | null {
  const { config, tls, logger } = ctx;
  const endpoint = config.upstream.imap;
  if (!endpoint) return null;
  const meter = protocolMeter('imap', ctx);
  const upstream = new ImapUpstream(endpoint, logger.child({ component: 'upstream', protocol: 'imap' }), { onConnect: meter.upstreamConnected });
  return {
    start: () => upstream.start(),
    stop: () => upstream.stop(),
    busyLine: IMAP_TOO_MANY_CONNECTIONS,
    handler: (socket, mode, client, log) =>
      meter.session(
        handleImapConnection(socket, mode, client, {
          authorize: meter.authorize,
          upstreamLogin: (user, password, c, signal) => meter.upstreamLogin(upstream.login(user, password, c, signal)),
          upstreamCapabilities: () => upstream.capabilities(),
          splice: (a, b, o) => meter.spliced(splice(a, b, { ...o, logger: log })),
          tls,
          limits: config.limits,
          sessions: ctx.sessions,
          progressIntervalMs: config.daemonOtp.progressInterval,
          logger: log,
        }),
      ),
  };
}
