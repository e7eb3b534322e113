import { Pop3Upstream } from '../../upstream/pop3-upstream.js';
import { protocolService, type ProtocolContext, type ProtocolService } from '../protocol-service.js';
import { POP3_TOO_MANY_CONNECTIONS } from './pop3-replies.js';
import { handlePop3Connection } from './pop3-session.js';

/** The POP3 listeners' handler, bound to the configured upstream; null when upstream.pop3 is not set. */
export function pop3Service(ctx: ProtocolContext): ProtocolService | null {
  const endpoint = ctx.upstreams.pop3;
  if (!endpoint) return null;
  return protocolService(ctx, {
    protocol: 'pop3',
    busyLine: POP3_TOO_MANY_CONNECTIONS,
    upstream: (logger, observers) => new Pop3Upstream(endpoint, logger, observers),
    session: (socket, mode, client, deps, upstream) =>
      handlePop3Connection(socket, mode, client, { ...deps, upstreamCapabilities: () => upstream.capabilities() }),
  });
}
