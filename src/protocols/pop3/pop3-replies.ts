import type { LoginResult, VerifiedUpstream } from '../../core/login-types.js';
import { safeReplyText, unhandledResult } from '../shared/reply-text.js';
import type { SaslDialect } from '../shared/sasl-exchange.js';

export { isFailedLogin } from '../shared/reply-text.js';

/**
 * RFC 3206 codes: [AUTH] tells the client the credentials are wrong (it may ask for a new
 * password); [SYS/TEMP] tells it to retry later with the same ones.
 *
 * The code alone is not enough for every client, so the temporary refusals are also worded:
 * - fetchmail 6.4 (pop3.c, pop3_ok) ignores response codes and reads every -ERR to PASS/AUTH as an
 *   authentication failure (exit 3; after three in daemon mode it mails "your password is invalid")
 *   unless the text contains "lock", "Lock", "LOCK", "wait", "[IN-USE]" or "[LOGIN-DELAY]" (lock busy:
 *   the text is shown, exit 9, polled again) or "service"/"Service" with "unavailable" (server busy).
 *   So every temporary line below carries a lower-case "wait".
 * - getmail 6 (_retrieverbases.py, POP3 initialize) turns any -ERR into "operation error (POP error
 *   (<the line>))": the text is what the user reads; it never asks for a password.
 * - Thunderbird's C++ POP3 (nsPop3Protocol.cpp, up to the 91 ESR) stops the login on "[SYS" /
 *   "[IN-USE" / "[LOGIN-DELAY" and shows the text without a password prompt; the JavaScript one
 *   (Pop3Client.sys.mjs) tries its next mechanism on any -ERR, then offers Retry / Enter New
 *   Password / Cancel whatever the code; Retry keeps the password.
 */
export const POP3_AUTH_FAILED = '-ERR [AUTH] Authentication failed.';
/** AUTH's lines (RFC 5034): "*" cancels, answered with -ERR; so is a response that is not base64. */
export const POP3_SASL: SaslDialect = {
  challengePrefix: '+ ',
  cancelled: '-ERR Authentication cancelled.',
  badBase64: '-ERR Invalid base64.',
  malformedPlain: POP3_AUTH_FAILED,
  authzidRefused: POP3_AUTH_FAILED,
};
export const POP3_TEMP_FAILURE = '-ERR [SYS/TEMP] Temporary failure, please wait and retry.';
/** The greeting of a connection past a connection cap. */
export const POP3_TOO_MANY_CONNECTIONS = '-ERR [SYS/TEMP] Too many connections, please wait and try again later.';
export const POP3_HOLD_TIMEOUT = '-ERR [SYS/TEMP] Still waiting for approval: approve this connection on your phone, then retry.';
/** The goodbye (and the answer to a login in flight) when the server stops. */
export const POP3_SHUTTING_DOWN = '-ERR [SYS/TEMP] Server shutting down, please wait and try again later.';
export const POP3_TOO_MANY = '-ERR [SYS/TEMP] Too many attempts, please wait and try again later.';

/** fetchmail's test for "temporary" (see above), on the text after -ERR. */
const FETCHMAIL_TEMPORARY = /lock|Lock|LOCK|wait|\[IN-USE\]|\[LOGIN-DELAY\]|[Ss]ervice.*unavailable/;

/** The upstream's own temporary refusal, with "wait" added where fetchmail would read it as a bad password. */
function temporaryLine(text: string): string {
  const line = LEADING_CODE.test(text) ? `-ERR ${text}` : `-ERR [SYS/TEMP] ${text}`;
  return FETCHMAIL_TEMPORARY.test(text) || !/^-ERR \[SYS\/TEMP\]/.test(line) ? line : `${line} (please wait and retry)`;
}

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
      return POP3_HOLD_TIMEOUT;
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
      return POP3_TOO_MANY;
    case 'unavailable': {
      // The upstream's own temporary refusal ([IN-USE] mailbox locked, [LOGIN-DELAY], ...) as it said it.
      const own = result.reply === undefined ? '' : safeReplyText(result.reply);
      return own ? temporaryLine(own) : POP3_TEMP_FAILURE;
    }
    case 'aborted':
      return null;
    default:
      return unhandledResult(result);
  }
}
