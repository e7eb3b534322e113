import type { LoginResult, VerifiedUpstream } from '../../core/login-types.js';
import { safeReplyText, unhandledResult } from '../shared/reply-text.js';
import type { SaslDialect } from '../shared/sasl-exchange.js';

export { isFailedLogin, safeReplyText } from '../shared/reply-text.js';

export const IMAP_AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';
/** AUTHENTICATE's lines, without the tag: a broken exchange is a tagged BAD (RFC 3501 6.2.2), a refusal a NO. */
export const IMAP_SASL: SaslDialect = {
  challengePrefix: '+ ',
  cancelled: 'BAD Authentication cancelled',
  badBase64: 'BAD Invalid base64',
  malformedPlain: IMAP_AUTH_FAILED,
  authzidRefused: 'NO [AUTHORIZATIONFAILED] Authorization failed.',
};
/** The greeting of a connection past a connection cap (RFC 9051: a BYE greeting refuses the connection). */
export const IMAP_TOO_MANY_CONNECTIONS = '* BYE [UNAVAILABLE] Too many connections, try again later.';
/** A login in flight when the server stops (then the BYE): retry later, the password is fine. */
export const IMAP_LOGIN_SHUTTING_DOWN = 'NO [UNAVAILABLE] Server shutting down, try again later.';
export const IMAP_PROGRESS_LINE = '* OK Waiting for approval on your phone';

/**
 * The one table from the core's answer to the tagged reply (without the tag).
 * null: say nothing (the client is gone).
 */
export function imapLoginReply<S extends VerifiedUpstream & { loginResponseText: string }>(result: LoginResult<S>): string | null {
  switch (result.kind) {
    case 'approved':
      // Not shortened: a cut "[CAPABILITY ...]" would be a syntax error to the client. The
      // upstream connector bounds the line it read.
      return `OK ${safeReplyText(result.session.loginResponseText, Infinity) || 'Logged in'}`;
    case 'pending-timeout':
      return 'NO [UNAVAILABLE] Approve this connection on your phone, then retry.';
    case 'denied':
      return IMAP_AUTH_FAILED;
    case 'bad-password': {
      const own = result.reply === undefined ? '' : safeReplyText(result.reply);
      return own ? `NO ${own}` : IMAP_AUTH_FAILED;
    }
    case 'no-device':
      return 'NO [CONTACTADMIN] Two-factor approval is required but no device is bound; contact your administrator.';
    case 'rate-limited':
      return 'NO [UNAVAILABLE] Too many attempts, try again later.';
    case 'unavailable':
      return 'NO [UNAVAILABLE] Temporary failure, please retry.';
    case 'aborted':
      return null;
    default:
      return unhandledResult(result);
  }
}
