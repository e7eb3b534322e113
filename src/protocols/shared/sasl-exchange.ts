import { decodeBase64, decodeInitialResponse, parsePlain, type SaslMechanism } from './sasl.js';

/**
 * How one protocol writes the lines of a SASL exchange: the challenge prefix ("+ " for IMAP and
 * POP3, "334 " for SMTP) and the reply text for each way the exchange can end early. IMAP's texts
 * are without the tag; the session puts it in front.
 */
export interface SaslDialect {
  challengePrefix: string;
  /** The client answered a challenge with "*" (RFC 4422 3.5): a protocol error, not a failed login. */
  cancelled: string;
  /** A response that is not strict base64: a protocol error, not a failed login. */
  badBase64: string;
  /** A PLAIN message without its two NULs: a failed login. */
  malformedPlain: string;
  /** PLAIN with an authzid other than the authcid: a failed login. */
  authzidRefused: string;
}

/** What the session does next in an exchange. */
export type SaslOutcome =
  /** Send this challenge line and read the client's response line. */
  | { type: 'challenge'; line: string }
  | { type: 'credentials'; user: Buffer; password: Buffer }
  /** The exchange ends with this reply; not a failed login (cancel, broken base64). */
  | { type: 'bad'; reply: string }
  /** An authentication failure decided here: counted as a failed login. */
  | { type: 'refused'; reply: string; why: string };

const PROMPT_USER = Buffer.from('Username:').toString('base64');
const PROMPT_PASSWORD = Buffer.from('Password:').toString('base64');

/** The server side of SASL PLAIN (RFC 4616) and LOGIN, with or without an initial response. */
export class SaslExchange {
  private user: Buffer | undefined;

  constructor(
    readonly mechanism: SaslMechanism,
    private readonly dialect: SaslDialect,
  ) {}

  /** `initial`: the initial response (RFC 4959, RFC 4954, RFC 5034), if the command carried one. */
  start(initial: string | undefined): SaslOutcome {
    // PLAIN answers an empty challenge, and the bare prefix is how an empty one is sent.
    if (initial === undefined) return this.challenge(this.mechanism === 'PLAIN' ? '' : PROMPT_USER);
    const response = decodeInitialResponse(initial);
    return response ? this.step(response) : { type: 'bad', reply: this.dialect.badBase64 };
  }

  /** A continuation line from the client. */
  respond(line: string): SaslOutcome {
    if (line === '*') return { type: 'bad', reply: this.dialect.cancelled };
    const response = decodeBase64(line);
    return response ? this.step(response) : { type: 'bad', reply: this.dialect.badBase64 };
  }

  private challenge(text: string): SaslOutcome {
    return { type: 'challenge', line: `${this.dialect.challengePrefix}${text}` };
  }

  private step(response: Buffer): SaslOutcome {
    if (this.mechanism === 'LOGIN') {
      if (this.user) return { type: 'credentials', user: this.user, password: response };
      this.user = response;
      return this.challenge(PROMPT_PASSWORD);
    }
    const plain = parsePlain(response);
    if (!plain) return { type: 'refused', reply: this.dialect.malformedPlain, why: 'malformed PLAIN response' };
    // Logging in as one user to act as another is not something the proxy can authorise.
    if (plain.authzid.length > 0 && !plain.authzid.equals(plain.authcid)) {
      return { type: 'refused', reply: this.dialect.authzidRefused, why: 'PLAIN authzid differs from authcid' };
    }
    return { type: 'credentials', user: plain.authcid, password: plain.password };
  }
}
