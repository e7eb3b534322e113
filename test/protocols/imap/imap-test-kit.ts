import assert from 'node:assert/strict';
import type { ClientInfo } from '../../../src/core/login-types.js';
import { handleImapConnection } from '../../../src/protocols/imap/imap-session.js';
import type { LineClient } from '../../helpers/line-client.js';
import { withSessionServer, type HarnessOptions, type ServerContext, type SessionDialect } from '../../helpers/session-harness.js';

/** IMAP's part of the session harness: the upstream's capabilities and login text, the progress cadence. */

export const UPSTREAM_CAPS = ['IMAP4rev1', 'SASL-IR', 'LOGIN-REFERRALS', 'ID', 'ENABLE', 'IDLE', 'LITERAL+', 'STARTTLS', 'AUTH=PLAIN', 'XCLIENT'];
export const LOGIN_TEXT = '[CAPABILITY IMAP4rev1 IDLE] Logged in';

export interface ImapHarnessOptions extends HarnessOptions {
  progressIntervalMs?: number;
}

function imapDialect(opts: ImapHarnessOptions): SessionDialect<ClientInfo> {
  return {
    loginResponseText: LOGIN_TEXT,
    upstreamBuffered: '* upstream-extra\r\n',
    splicedLine: '* SPLICED',
    handle: (socket, mode, client, deps) =>
      handleImapConnection(socket, mode, client, { ...deps, upstreamCapabilities: async () => UPSTREAM_CAPS, progressIntervalMs: opts.progressIntervalMs ?? 50 }),
  };
}

/** Runs `body` against a fresh IMAP session server (implicit TLS unless `mode` says otherwise). */
export function withServer(opts: ImapHarnessOptions, body: (ctx: ServerContext) => Promise<void>): Promise<void> {
  return withSessionServer(imapDialect(opts), opts, body);
}

/** Reads up to the tagged OK of an approved login and the fake splice's first bytes. */
export async function expectLoggedIn(c: LineClient, tag = 'a'): Promise<string[]> {
  const lines = await c.until(`${tag} `);
  assert.equal(lines.at(-1), `${tag} OK ${LOGIN_TEXT}`);
  assert.deepEqual(await c.until('* SPLICED'), ['* upstream-extra', '* SPLICED']);
  return lines;
}
