import { handlePop3Connection } from '../../../src/protocols/pop3/pop3-session.js';
import type { ClientInfo } from '../../../src/core/login-types.js';
import { withSessionServer, type Harness, type HarnessOptions, type ServerContext } from '../../helpers/session-harness.js';

/** POP3's part of the session harness: the upstream's CAPA lines, the greeting, the login text. */

export const UPSTREAM_CAPS = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'USER', 'SASL PLAIN LOGIN CRAM-MD5', 'IMPLEMENTATION Dovecot'];
/** What a TLS client is offered, given UPSTREAM_CAPS. */
export const TLS_CAPS = ['CAPA', 'TOP', 'UIDL', 'PIPELINING', 'RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN'];

/** Runs `body` against a fresh POP3 session server (implicit TLS unless `mode` says otherwise); connect() reads the greeting. */
export function withServer(opts: HarnessOptions, body: (ctx: ServerContext) => Promise<void>): Promise<void> {
  return withSessionServer<ClientInfo>(
    {
      greeting: '+OK mailotp ready.',
      loginResponseText: 'Logged in.',
      upstreamBuffered: '',
      splicedLine: '+OK SPLICED',
      handle: (socket, mode, client, deps) => handlePop3Connection(socket, mode, client, { ...deps, upstreamCapabilities: async () => UPSTREAM_CAPS }),
    },
    opts,
    body,
  );
}

/** The credentials the upstream was asked to check, in order. */
export const logins = (h: Harness) => h.upstreamLogins.map(({ user, password }) => ({ user, password }));
