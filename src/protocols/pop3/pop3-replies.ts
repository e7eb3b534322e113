import type { LoginResult, VerifiedUpstream } from '../../core/login-types.js';
import { safeReplyText } from '../shared/reply-text.js';

export { isFailedLogin } from '../shared/reply-text.js';

/**
 * RFC 3206 codes: [AUTH] tells the client the credentials are wrong (it may ask for a new
 * password); [SYS/TEMP] tells it to retry later with the same ones.
 */
export const POP3_AUTH_FAILED = '-ERR [AUTH] Authentication failed.';
export const POP3_TEMP_FAILURE = '-ERR [SYS/TEMP] Temporary failure, please retry.';
/** The greeting of a connection past a connection cap. */
export const POP3_TOO_MANY_CONNECTIONS = '-ERR [SYS/TEMP] Too many connections, try again later.';

/**
 * Refusal of USER/PASS/AUTH on a STARTTLS port before STLS. POP3 has no PRIVACYREQUIRED: [AUTH]
 * would make clients ask for a new password, [SYS/TEMP] would make them retry in clear forever;
 * a plain -ERR is shown as is and names the fix.
 */
export const POP3_USE_STLS = '-ERR Use STLS first.';

const LEADING_CODE = /^\[[^\]]*\]\s*/;

/**
 * The one table from the core's answer to the reply line for PASS or AUTH.
 * null: say nothing (the client is gone).
 */
export function pop3LoginReply<S extends VerifiedUpstream & { loginResponseText: string }>(result: LoginResult<S>): string | null {
  switch (result.kind) {
    case 'approved': {
      // The upstream's own +OK text ("Logged in."): the client is now talking to it.
      const own = safeReplyText(result.session.loginResponseText);
      return own ? `+OK ${own}` : '+OK Logged in.';
    }
    case 'pending-timeout':
      return '-ERR [SYS/TEMP] Approve this connection on your phone, then retry.';
    case 'denied':
      return POP3_AUTH_FAILED;
    case 'bad-password': {
      // Always [AUTH] (whatever code the upstream used, or none): this is a credentials failure.
      const own = result.reply === undefined ? '' : safeReplyText(result.reply).replace(LEADING_CODE, '');
      return own ? `-ERR [AUTH] ${own}` : POP3_AUTH_FAILED;
    }
    case 'no-device':
      return '-ERR [AUTH] Two-factor approval is required but no device is bound; contact your administrator.';
    case 'rate-limited':
      return '-ERR [SYS/TEMP] Too many attempts, try again later.';
    case 'unavailable': {
      // The upstream's own temporary refusal ([IN-USE] mailbox locked, [LOGIN-DELAY], ...) as it said it.
      const own = result.reply === undefined ? '' : safeReplyText(result.reply);
      if (!own) return POP3_TEMP_FAILURE;
      return LEADING_CODE.test(own) ? `-ERR ${own}` : `-ERR [SYS/TEMP] ${own}`;
    }
    case 'aborted':
      return null;
    default: {
      const unhandled: never = result;
      throw new Error(`unhandled login result ${JSON.stringify(unhandled)}`);
    }
  }
}
