import { splice } from '../../upstream/splice.js';
import { Pop3Upstream } from '../../upstream/pop3-upstream.js';
import { protocolMeter, type ProtocolContext, type ProtocolService } from '../protocol-service.js';
import { POP3_TOO_MANY_CONNECTIONS } from './pop3-replies.js';
import { handlePop3Connection } from './pop3-session.js';

/** The POP3 listeners' handler, bound to the configured upstream; null when upstream.pop3 is not set. */
export function pop3Service(ctx: ProtocolContext): ProtocolService | null {
  const { config, tls, logger } = ctx;
  const endpoint = config.upstream.pop3;
  if (!endpoint) return null;
  const meter = protocolMeter('pop3', ctx);
  const upstream = new Pop3Upstream(endpoint, logger.child({ component: 'upstream', protocol: 'pop3' }), { onConnect: meter.upstreamConnected });
  return {
    start: () => upstream.start(),
    stop: () => upstream.stop(),
    busyLine: POP3_TOO_MANY_CONNECTIONS,
    handler: (socket, mode, client, log) =>
      meter.session(
        handlePop3Connection(socket, mode, client, {
          authorize: meter.authorize,
          upstreamLogin: (user, password, c, signal) => meter.upstreamLogin(upstream.login(user, password, c, signal)),
          upstreamCapabilities: () => upstream.capabilities(),
          splice: (a, b, o) => meter.spliced(splice(a, b, { ...o, logger: log })),
          tls,
          limits: config.limits,
          sessions: ctx.sessions,
          logger: log,
        }),
      ),
  };
}
