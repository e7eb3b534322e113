import { handleSmtpConnection, type SmtpClientInfo } from '../../../src/protocols/smtp/smtp-session.js';
import type { LineClient } from '../../helpers/line-client.js';
import { b64, withSessionServer, type HarnessOptions, type ServerContext } from '../../helpers/session-harness.js';

/** SMTP's part of the session harness: the upstream's EHLO extensions, the greeting, the hostname. */

export const HOST = 'mx.test';
export const UPSTREAM_EHLO = ['8BITMIME', 'AUTH PLAIN LOGIN', 'BURL imap', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'SIZE 1000000', 'STARTTLS', 'PIPELINING', 'XCLIENT ADDR PORT HELO'];
/** What a TLS client is offered, given UPSTREAM_EHLO. */
export const TLS_EHLO = ['250-mx.test', '250-8BITMIME', '250-CHUNKING', '250-ENHANCEDSTATUSCODES', '250-SIZE 1000000', '250-PIPELINING', '250 AUTH PLAIN LOGIN'];

/** Runs `body` against a fresh SMTP session server (implicit TLS unless `mode` says otherwise); connect() reads the greeting. */
export function withServer(opts: HarnessOptions, body: (ctx: ServerContext<SmtpClientInfo>) => Promise<void>): Promise<void> {
  return withSessionServer<SmtpClientInfo>(
    {
      greeting: `220 ${HOST} ESMTP mailotp`,
      loginResponseText: '',
      upstreamBuffered: '250 upstream-extra\r\n',
      splicedLine: '250 SPLICED',
      handle: (socket, mode, client, deps) => handleSmtpConnection(socket, mode, client, { ...deps, upstreamExtensions: async () => UPSTREAM_EHLO, hostname: HOST }),
    },
    opts,
    body,
  );
}

export const plain = (user: string, pass: string, authz = '') => b64(`${authz}\0${user}\0${pass}`);

/** Reads one (possibly multi-line) SMTP reply. */
export async function reply(c: LineClient, timeoutMs = 3000): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await c.next(timeoutMs);
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return lines;
  }
}
