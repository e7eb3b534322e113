/** SASL pieces every protocol's login shares (RFC 4422, 4616, 4959) and the credential checks. */

/** Strict base64 (RFC 4648, padded), as SASL exchanges require; "" is an empty response. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64(text: string): Buffer | null {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

/** RFC 4959: "=" is an empty initial response. */
export function decodeInitialResponse(text: string): Buffer | null {
  return text === '=' ? Buffer.alloc(0) : decodeBase64(text);
}

export interface PlainResponse {
  authzid: Buffer;
  authcid: Buffer;
  password: Buffer;
}

/** RFC 4616: [authzid] NUL authcid NUL passwd. */
export function parsePlain(message: Buffer): PlainResponse | null {
  const first = message.indexOf(0);
  if (first < 0) return null;
  const second = message.indexOf(0, first + 1);
  if (second < 0 || message.indexOf(0, second + 1) >= 0) return null;
  return {
    authzid: message.subarray(0, first),
    authcid: message.subarray(first + 1, second),
    password: message.subarray(second + 1),
  };
}

// ignoreBOM: a password may legitimately start with U+FEFF and must reach the upstream intact.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Buffer): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

export type Credentials = { ok: true; user: string; password: string } | { ok: false; why: string };

/**
 * Refuses, before the core or the upstream ever sees them, credentials no real account has and
 * that could be dangerous downstream: control characters in the name (log and protocol
 * injection), NUL/CR/LF in the password (a NUL splits a SASL PLAIN message, CR/LF would split an
 * upstream command line), an empty password (some directory backends take it as an anonymous
 * bind) and bytes that are not UTF-8 (the upstream API takes strings).
 */
export function checkCredentials(userBytes: Buffer, passwordBytes: Buffer): Credentials {
  const user = decodeUtf8(userBytes);
  const password = decodeUtf8(passwordBytes);
  if (user === null || password === null) return { ok: false, why: 'not UTF-8' };
  if (user.length === 0 || /[\x00-\x1f\x7f]/.test(user)) return { ok: false, why: 'invalid user name' };
  if (password.length === 0 || /[\x00\r\n]/.test(password)) return { ok: false, why: 'invalid password' };
  return { ok: true, user, password };
}

export type SaslMechanism = 'PLAIN' | 'LOGIN';

/** Mechanism names are case-insensitive (RFC 4422). */
export function saslMechanism(name: string): SaslMechanism | null {
  const upper = name.toUpperCase();
  return upper === 'PLAIN' || upper === 'LOGIN' ? upper : null;
}
