import { splice } from '../../upstream/splice.js';
import { Pop3Upstream } from '../../upstream/pop3-upstream.js';
import type { ProtocolContext, ProtocolService } from '../protocol-service.js';
import { POP3_TOO_MANY_CONNECTIONS } from './pop3-replies.js';
import { handlePop3Connection } from './pop3-session.js';

/** The POP3 listeners' handler, bound to the configured upstream; null when upstream.pop3 is not set. */
export function pop3Service({ config, core, tls, logger }: ProtocolContext): ProtocolService | null {
  const endpoint = config.upstream.pop3;
  if (!endpoint) return null;
  const upstream = new Pop3Upstream(endpoint, logger.child({ component: 'upstream', protocol: 'pop3' }));
  return {
    start: () => upstream.start(),
    stop: () => upstream.stop(),
    busyLine: POP3_TOO_MANY_CONNECTIONS,
    handler: (socket, mode, client, log) =>
      handlePop3Connection(socket, mode, client, {
        authorize: core.authorizer.authorize,
        upstreamLogin: (user, password, c, signal) => upstream.login(user, password, c, signal),
        upstreamCapabilities: () => upstream.capabilities(),
        splice: (a, b, o) => splice(a, b, { ...o, logger: log }),
        tls,
        limits: config.limits,
        logger: log,
      }),
  };
}
