import { MailotpError } from '../core/errors.js';

/** The upstream cannot be used now (down, refused, timed out, aborted): a temporary failure. */
export function unavailable(message: string, cause?: unknown): MailotpError {
  return new MailotpError('MAILOTP_ERR_UPSTREAM_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
}

/** The upstream said something its protocol does not allow. */
export function protocolError(message: string): MailotpError {
  return new MailotpError('MAILOTP_ERR_UPSTREAM_PROTOCOL', message);
}

/** An upstream line as it may appear in a log or a reason: printable ASCII, at most 200 characters. */
export function clip(line: string): string {
  const printable = line.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}...` : printable;
}
