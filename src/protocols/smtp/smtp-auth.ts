import { decodeBase64, decodeInitialResponse, parsePlain } from '../shared/sasl.js';
import { SMTP_AUTH_FAILED } from './smtp-replies.js';

export type SmtpSaslMechanism = 'PLAIN' | 'LOGIN';

/** Mechanism names are case-insensitive (RFC 4422). */
export function smtpSaslMechanism(name: string): SmtpSaslMechanism | null {
  const upper = name.toUpperCase();
  return upper === 'PLAIN' || upper === 'LOGIN' ? upper : null;
}

/** What the session does next in an AUTH exchange (RFC 4954). */
export type SmtpSaslOutcome =
  /** Send this "334 ..." line and read the client's response line. */
  | { type: 'challenge'; line: string }
  | { type: 'credentials'; user: Buffer; password: Buffer }
  /** The exchange ends with this reply; not a failed login (cancel, broken base64). */
  | { type: 'bad'; reply: string }
  /** An authentication failure decided here: counted as a failed login. */
  | { type: 'refused'; reply: string; why: string };

const PROMPT_USER = `334 ${Buffer.from('Username:').toString('base64')}`;
const PROMPT_PASSWORD = `334 ${Buffer.from('Password:').toString('base64')}`;
const BAD_BASE64 = '501 5.5.2 Invalid base64 data';

/** The server side of SASL PLAIN (RFC 4616) and LOGIN, with or without an initial response. */
export class SmtpSaslExchange {
  private user: Buffer | undefined;

  constructor(readonly mechanism: SmtpSaslMechanism) {}

  start(initial: string | undefined): SmtpSaslOutcome {
    // RFC 4954 4: PLAIN answers an empty challenge, and "334 " is how an empty one is sent.
    if (initial === undefined) return { type: 'challenge', line: this.mechanism === 'PLAIN' ? '334 ' : PROMPT_USER };
    const response = decodeInitialResponse(initial);
    return response ? this.step(response) : { type: 'bad', reply: BAD_BASE64 };
  }

  respond(line: string): SmtpSaslOutcome {
    if (line === '*') return { type: 'bad', reply: '501 5.7.0 Authentication cancelled' };
    const response = decodeBase64(line);
    return response ? this.step(response) : { type: 'bad', reply: BAD_BASE64 };
  }

  private step(response: Buffer): SmtpSaslOutcome {
    if (this.mechanism === 'LOGIN') {
      if (this.user) return { type: 'credentials', user: this.user, password: response };
      this.user = response;
      return { type: 'challenge', line: PROMPT_PASSWORD };
    }
    const plain = parsePlain(response);
    if (!plain) return { type: 'refused', reply: SMTP_AUTH_FAILED, why: 'malformed PLAIN response' };
    // Logging in as one user to act as another is not something the proxy can authorise.
    if (plain.authzid.length > 0 && !plain.authzid.equals(plain.authcid)) {
      return { type: 'refused', reply: SMTP_AUTH_FAILED, why: 'PLAIN authzid differs from authcid' };
    }
    return { type: 'credentials', user: plain.authcid, password: plain.password };
  }
}
