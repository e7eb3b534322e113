import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** SHA-256 hex of a high-entropy token; what the store keeps instead of the token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests (false when lengths differ). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** A device token: "<deviceId>.<32 random bytes, base64url>". The id part finds the record;
 * the whole token is compared by hash in constant time. */
export function newDeviceToken(): { deviceId: string; token: string } {
  const deviceId = randomUUID();
  return { deviceId, token: `${deviceId}.${randomBytes(32).toString('base64url')}` };
}

export function deviceIdOfToken(token: string): string | null {
  const dot = token.indexOf('.');
  if (dot <= 0 || token.length > 200) return null;
  const id = token.slice(0, dot);
  return /^[0-9a-f-]{36}$/.test(id) ? id : null;
}

export function newRequestId(): string {
  return randomBytes(16).toString('base64url');
}
