import type { LoginResult, VerifiedUpstream } from '../../core/login-types.js';

/** Upstream text made safe to put on one reply line: no CR/LF or other control characters. */
export function safeReplyText(text: string, maxLength = 1024): string {
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > maxLength ? clean.slice(0, maxLength) : clean;
}

/** Results that count toward limits.maxFailedLoginsPerConnection (not the temporary ones). */
export function isFailedLogin(kind: LoginResult<VerifiedUpstream>['kind']): boolean {
  return kind === 'bad-password' || kind === 'denied' || kind === 'no-device' || kind === 'rate-limited';
}

/** The default of each protocol's login-reply switch: never reached, since the compiler checks the switch covers every result. */
export function unhandledResult(result: never): never {
  throw new Error(`unhandled login result ${JSON.stringify(result)}`);
}
