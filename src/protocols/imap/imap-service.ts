import { ImapUpstream } from '../../upstream/imap-upstream.js';
import { protocolService, type ProtocolContext, type ProtocolService } from '../protocol-service.js';
import { IMAP_TOO_MANY_CONNECTIONS } from './imap-replies.js';
import { handleImapConnection } from './imap-session.js';

/** The IMAP listeners' handler, bound to the configured upstream; null when upstream.imap is not set. */
export function imapService(ctx: ProtocolContext): ProtocolService | null {
  const endpoint = ctx.upstreams.imap;
  if (!endpoint) return null;
  return protocolService(ctx, {
    protocol: 'imap',
    busyLine: IMAP_TOO_MANY_CONNECTIONS,
    upstream: (logger, observers) => new ImapUpstream(endpoint, logger, observers),
    session: (socket, mode, client, deps, upstream) =>
      handleImapConnection(socket, mode, client, {
        ...deps,
        upstreamCapabilities: () => upstream.capabilities(),
        progressIntervalMs: ctx.progressIntervalMs,
      }),
  });
}
