import type { LoginResult, VerifiedUpstream } from '../../core/login-types.js';

export const IMAP_AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';
export const IMAP_PROGRESS_LINE = '* OK Waiting for approval on your phone';

/** Upstream text made safe to put on one reply line: no CR/LF or other control characters. */
export function safeReplyText(text: string, maxLength = 1024): string {
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > maxLength ? clean.slice(0, maxLength) : clean;
}

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
    default: {
      const unhandled: never = result;
      throw new Error(`unhandled login result ${JSON.stringify(unhandled)}`);
    }
  }
}

/** Results that count toward limits.maxFailedLoginsPerConnection (not the temporary ones). */
export function isFailedLogin(kind: LoginResult<VerifiedUpstream>['kind']): boolean {
  return kind === 'bad-password' || kind === 'denied' || kind === 'no-device' || kind === 'rate-limited';
}
