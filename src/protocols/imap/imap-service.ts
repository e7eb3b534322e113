import { splice } from '../../upstream/splice.js';
import { ImapUpstream } from '../../upstream/imap-upstream.js';
import type { ProtocolContext, ProtocolService } from '../protocol-service.js';
import { IMAP_TOO_MANY_CONNECTIONS } from './imap-replies.js';
import { handleImapConnection } from './imap-session.js';

/** The IMAP listeners' handler, bound to the configured upstream; null when upstream.imap is not set. */
export function imapService({ config, core, tls, logger }: ProtocolContext): ProtocolService | null {
  const endpoint = config.upstream.imap;
  if (!endpoint) return null;
  const upstream = new ImapUpstream(endpoint, logger.child({ component: 'upstream', protocol: 'imap' }));
  return {
    start: () => upstream.start(),
    stop: () => upstream.stop(),
    busyLine: IMAP_TOO_MANY_CONNECTIONS,
    handler: (socket, mode, client, log) =>
      handleImapConnection(socket, mode, client, {
        authorize: core.authorizer.authorize,
        upstreamLogin: (user, password, c, signal) => upstream.login(user, password, c, signal),
        upstreamCapabilities: () => upstream.capabilities(),
        splice: (a, b, o) => splice(a, b, { ...o, logger: log }),
        tls,
        limits: config.limits,
        progressIntervalMs: config.daemonOtp.progressInterval,
        logger: log,
      }),
  };
}
