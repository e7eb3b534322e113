/** Errors that cross a module boundary carry a stable code. */
export type ErrorCode =
  | 'MAILOTP_ERR_CONFIG'
  | 'MAILOTP_ERR_STORE_UNAVAILABLE'
  | 'MAILOTP_ERR_UPSTREAM_UNAVAILABLE'
  | 'MAILOTP_ERR_UPSTREAM_PROTOCOL'
  | 'MAILOTP_ERR_DEVICE_EXISTS'
  | 'MAILOTP_ERR_NOT_FOUND'
  | 'MAILOTP_ERR_BAD_INPUT';

export class MailotpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MailotpError';
  }
}

export function isMailotpError(err: unknown, code?: ErrorCode): err is MailotpError {
  return err instanceof MailotpError && (code === undefined || err.code === code);
}
