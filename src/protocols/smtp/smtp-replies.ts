import type { LoginResult, VerifiedUpstream } from '../../core/login-types.js';
import { unhandledResult } from '../shared/reply-text.js';
import type { SaslDialect } from '../shared/sasl-exchange.js';

export { isFailedLogin } from '../shared/reply-text.js';

export const SMTP_AUTH_OK = '235 2.7.0 Authentication successful';
export const SMTP_AUTH_FAILED = '535 5.7.8 Authentication credentials invalid';
/** AUTH's lines (RFC 4954): challenges are 334 lines; a cancel or broken base64 is a 501, not a failed login. */
export const SMTP_SASL: SaslDialect = {
  challengePrefix: '334 ',
  cancelled: '501 5.7.0 Authentication cancelled',
  badBase64: '501 5.5.2 Invalid base64 data',
  malformedPlain: SMTP_AUTH_FAILED,
  authzidRefused: SMTP_AUTH_FAILED,
};
export const SMTP_AUTH_REQUIRED = '530 5.7.0 Authentication required';
export const SMTP_STARTTLS_FIRST = '530 5.7.0 Must issue a STARTTLS command first';

/** The greeting of a connection past a connection cap (RFC 5321 4.3.2: 421 instead of 220). */
export function smtpTooManyConnections(host: string): string {
  return `421 4.7.0 ${host} Too many connections, try again later`;
}

/** Upstream text made safe to put on one reply line: printable ASCII only, bounded. */
export function safeReplyText(text: string, maxLength = 400): string {
  const clean = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return clean.length > maxLength ? clean.slice(0, maxLength) : clean;
}

/**
 * The human part of an upstream reply: "535 5.7.8 Authentication failed" -> "Authentication
 * failed", so it can go out under mailotp's own codes.
 */
export function replyTextOf(reply: string): string {
  return safeReplyText(reply.replace(/^\d{3}[ -]?/, '').replace(/^[245]\.\d{1,3}\.\d{1,3}(?: |$)/, ''));
}

/**
 * The one table from the core's answer to the reply to AUTH. null: say nothing (the client is
 * gone). RFC 4954: 235 success, 454 temporary failure, 535 credentials refused.
 */
export function smtpLoginReply<S extends VerifiedUpstream>(result: LoginResult<S>): string | null {
  switch (result.kind) {
    case 'approved':
      return SMTP_AUTH_OK;
    case 'pending-timeout':
      return '454 4.7.0 Approve this connection on your phone, then retry.';
    case 'denied':
      return SMTP_AUTH_FAILED;
    case 'bad-password': {
      // The upstream's own words under the standard codes: a 534 or 538 from it still means "not
      // with these credentials" to the client, and 535 is what every client understands.
      const own = result.reply === undefined ? '' : replyTextOf(result.reply);
      return own ? `535 5.7.8 ${own}` : SMTP_AUTH_FAILED;
    }
    case 'no-device':
      return '535 5.7.8 Two-factor approval is required but no device is bound; contact your administrator.';
    case 'rate-limited':
      return '454 4.7.0 Too many attempts, try again later.';
    case 'unavailable': {
      const own = result.reply === undefined ? '' : replyTextOf(result.reply);
      return `454 4.7.0 ${own || 'Temporary failure, please retry.'}`;
    }
    case 'aborted':
      return null;
    default:
      return unhandledResult(result);
  }
}
