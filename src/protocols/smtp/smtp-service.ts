import os from 'node:os';
import { SmtpUpstream } from '../../upstream/smtp-upstream.js';
import { protocolService, type ProtocolContext, type ProtocolService } from '../protocol-service.js';
import { smtpTooManyConnections } from './smtp-replies.js';
import { handleSmtpConnection } from './smtp-session.js';

/** The greeting name: the machine's name when it is a usable host name. */
function greetingHostname(): string {
  const name = os.hostname();
  return /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(name) ? name : 'localhost';
}

/** The SMTP listeners' handler, bound to the configured upstream; null when upstream.smtp is not set. */
export function smtpService(ctx: ProtocolContext): ProtocolService | null {
  const endpoint = ctx.upstreams.smtp;
  if (!endpoint) return null;
  const hostname = greetingHostname();
  return protocolService(ctx, {
    protocol: 'smtp',
    busyLine: smtpTooManyConnections(hostname),
    upstream: (logger, observers) => new SmtpUpstream(endpoint, logger, { heloName: hostname, ...observers }),
    session: (socket, mode, client, deps, upstream) =>
      handleSmtpConnection(socket, mode, client, { ...deps, upstreamExtensions: () => upstream.extensions(), hostname }),
  });
}
